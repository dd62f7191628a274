"""Build steps that produce code from schemas: Protobuf modules are generated, never committed."""
from __future__ import annotations

from pathlib import Path

from include.platform.settings import REPO_ROOT


def compile_protos(root: Path = REPO_ROOT / "spark_apps") -> list[Path]:
    """Compile every ``*.proto`` under spark_apps/ to a ``*_pb2.py`` beside it (grpc_tools.protoc)."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    outputs = []
    for proto in sorted(root.rglob("*.proto")):
        out = proto.with_name(proto.stem + "_pb2.py")
        if out.exists() and out.stat().st_mtime >= proto.stat().st_mtime:
            outputs.append(out)
            continue
        code = protoc.main([
            "protoc", f"-I{proto.parent}", f"-I{include}", f"--python_out={proto.parent}", str(proto),
        ])
        if code != 0:
            raise RuntimeError(f"protoc failed on {proto} (exit {code})")
        outputs.append(out)
    return outputs


if __name__ == "__main__":
    for path in compile_protos():
        print(path)
