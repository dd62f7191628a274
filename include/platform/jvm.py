"""The platform's JVM jars: resolved once from ``jvm/pom.xml``, verified, used from a folder outside git.

``jvm/pom.xml`` is the one manifest (one Maven profile per group, see its header);
``jvm/jars.sha256`` pins every resolved jar (transitive ones too) by name and checksum.
``make deps`` runs ``python -m include.platform.jvm resolve``: per group, Maven copies the
group's runtime jars into ``$DP_JARS_DIR/<group>/`` (default
``~/.cache/dataplatform/jars``), each is checked against the lock, and a stamp records
what was resolved, so a second run with nothing changed does not start Maven at all.

Users of the jars ask this module for them: :func:`spark_jars` for ``spark.jars`` /
``--jars``, :func:`classpath` for a service's own JVM (the Kafka broker),
:func:`pinned_jar_names` for the EMR steps (names from the lock, no I/O of the cache
folder). The Docker images resolve the same pom in a Maven build stage and install the
result with ``python -m include.platform.jvm install``. Jobs never use ``--packages``:
nothing is downloaded when a job runs.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from include.platform.settings import REPO_ROOT

POM = REPO_ROOT / "jvm" / "pom.xml"
LOCK = REPO_ROOT / "jvm" / "jars.sha256"
GROUPS = ("spark", "spark-4.0", "kafka-broker", "cassandra")
# The connector jars per Spark line (major.minor), Scala 2.13 each: `spark` for the pyspark of
# requirements.lock (4.2, with s3a), `spark-4.0` for Spark 4.0.x (emr-spark-8.0.0's Spark, whose
# s3:// is EMRFS, and the second test environment .venv-spark40).
SPARK_LINE_GROUPS = {"4.2": "spark", "4.0": "spark-4.0"}
STAMP = ".resolved"


class JarsError(RuntimeError):
    """One line: what is wrong with the JVM jars and how to fix it."""


def jars_root() -> Path:
    configured = os.environ.get("DP_JARS_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dataplatform" / "jars"


def group_dir(group: str) -> Path:
    if group not in GROUPS:
        raise ValueError(f"unknown jar group {group!r}; known: {', '.join(GROUPS)}")
    return jars_root() / group


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_lock(lock: Path = LOCK) -> dict[str, dict[str, str]]:
    """``{group: {jar file name: sha256}}`` from the lock file (``group  name  sha256`` lines)."""
    pins: dict[str, dict[str, str]] = {group: {} for group in GROUPS}
    if not lock.exists():
        return pins
    for line in lock.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        group, name, digest = line.split()
        pins.setdefault(group, {})[name] = digest
    return pins


def _manifest_stamp(group: str, pins: dict[str, str]) -> str:
    """What a resolved folder must have been resolved from: the pom and the group's pins."""
    text = POM.read_bytes() + "".join(f"{n} {d}\n" for n, d in sorted(pins.items())).encode()
    return f"{group} {hashlib.sha256(text).hexdigest()}"


def _maven(group: str, out: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise JarsError("Maven (mvn) not found: install it (apt-get install -y maven) and rerun `make deps`")
    argv = [mvn, "-q", "-B", "--strict-checksums", "-f", str(POM), "-P", group,
            "dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
        first = errors[0].replace("[ERROR]", "").strip() if errors else f"exit {proc.returncode}"
        raise JarsError(
            f"resolving the '{group}' jars of jvm/pom.xml from Maven Central failed ({first[:300]}): "
            "check access to repo.maven.apache.org (or the mirror in ~/.m2/settings.xml) and rerun `make deps`"
        )


def verify(group: str, folder: Path, pins: dict[str, str]) -> None:
    """The folder holds exactly the pinned jars of ``group`` with their checksums, or JarsError."""
    found = {p.name: p for p in folder.glob("*.jar")}
    missing = sorted(set(pins) - set(found))
    extra = sorted(set(found) - set(pins))
    if missing or extra:
        raise JarsError(
            f"the '{group}' jars differ from jvm/jars.sha256 (missing {missing[:3]}, unexpected {extra[:3]}): "
            "after changing jvm/pom.xml run `make jars-lock`"
        )
    for name, digest in pins.items():
        if _sha256(found[name]) != digest:
            raise JarsError(
                f"{found[name]} does not match its checksum in jvm/jars.sha256: delete {folder} and rerun `make deps`"
            )


def resolve(groups: tuple[str, ...] = GROUPS, echo=print) -> None:
    """Resolve, verify and install each group's jars; nothing to do when the stamp matches."""
    pins_by_group = read_lock()
    for group in groups:
        pins = pins_by_group.get(group) or {}
        if not pins:
            raise JarsError(f"jvm/jars.sha256 pins no jar of group '{group}': run `make jars-lock`")
        target = group_dir(group)
        stamp = _manifest_stamp(group, pins)
        if (target / STAMP).exists() and (target / STAMP).read_text().strip() == stamp:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{group}-") as tmp:
            fresh = Path(tmp) / group
            _maven(group, fresh)
            _put_in_place(group, fresh, pins, stamp, target)
        echo(f"JVM jars '{group}': {len(pins)} jars in {target}")


def _put_in_place(group: str, fresh: Path, pins: dict[str, str], stamp: str, target: Path) -> None:
    """Verify ``fresh`` (a folder next to ``target``), stamp it and make it ``target``."""
    verify(group, fresh, pins)
    (fresh / STAMP).write_text(stamp + "\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(fresh, target)


def install(group: str, source: Path, echo=print) -> Path:
    """Install jars of ``group`` that were resolved elsewhere from the same jvm/pom.xml (the
    Maven stage of docker/airflow.Dockerfile) exactly as :func:`resolve` would: only when
    they verify against jvm/jars.sha256, and stamped, so that :func:`classpath` serves them."""
    pins = read_lock().get(group) or {}
    if not pins:
        raise JarsError(f"jvm/jars.sha256 pins no jar of group '{group}': run `make jars-lock`")
    verify(group, source, pins)
    target = group_dir(group)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{group}-") as tmp:
        fresh = Path(tmp) / group
        fresh.mkdir()
        for name in pins:
            shutil.copy2(source / name, fresh / name)
        _put_in_place(group, fresh, pins, _manifest_stamp(group, pins), target)
    echo(f"JVM jars '{group}': {len(pins)} jars from {source} in {target}")
    return target


def write_lock(groups: tuple[str, ...] = GROUPS, echo=print) -> None:
    """Resolve ``groups`` afresh and write their lines of ``jvm/jars.sha256`` (``make jars-lock``;
    ``lock --group G`` re-pins one group and keeps the others' lines)."""
    lines = ["# Every jar jvm/pom.xml resolves, per group: group  file  sha256. Written by `make jars-lock`;",
             "# `make deps` refuses jars that differ from it."]
    kept = read_lock()
    with tempfile.TemporaryDirectory() as tmp:
        for group in GROUPS:
            if group not in groups:
                lines += [f"{group}  {name}  {digest}" for name, digest in sorted(kept.get(group, {}).items())]
                continue
            out = Path(tmp) / group
            _maven(group, out)
            for jar in sorted(out.glob("*.jar")):
                lines.append(f"{group}  {jar.name}  {_sha256(jar)}")
    LOCK.write_text("\n".join(lines) + "\n")
    echo(f"wrote {LOCK}")


def classpath(group: str) -> list[Path]:
    """The jars of ``group`` (sorted), or JarsError when they were not resolved."""
    folder = group_dir(group)
    jars = sorted(folder.glob("*.jar"))
    if not (folder / STAMP).exists() or not jars:
        raise JarsError(f"the '{group}' JVM jars are not in {folder}: run `make deps`")
    return jars


def pinned_jar_names(group: str, lock: Path | None = None) -> list[str]:
    """The file names of ``group``'s jars as jvm/jars.sha256 pins them, sorted like
    :func:`classpath`. Reads only the checked-in lock (no cache folder), so DAG files may
    use it at parse time: the EMR steps name the uploaded jars with it."""
    if group not in GROUPS:
        raise ValueError(f"unknown jar group {group!r}; known: {', '.join(GROUPS)}")
    names = sorted(read_lock(lock or LOCK).get(group) or {})
    if not names:
        raise JarsError(f"jvm/jars.sha256 pins no jar of group '{group}': run `make jars-lock`")
    return names


def spark_line_group(line: str) -> str:
    """The jar group of a Spark line ("4.0", or a full version "4.0.2")."""
    key = ".".join(line.split(".")[:2])
    if key not in SPARK_LINE_GROUPS:
        raise JarsError(f"no connector jars for Spark {line} in jvm/pom.xml (Spark lines: {', '.join(SPARK_LINE_GROUPS)})")
    return SPARK_LINE_GROUPS[key]


def installed_spark_group() -> str:
    """The jar group matching the installed pyspark (its metadata only: Spark is not imported)."""
    from importlib.metadata import version

    return spark_line_group(version("pyspark"))


def spark_jars() -> str:
    """``spark.jars`` for local applications: the group of the installed pyspark, comma-separated local paths."""
    return ",".join(str(p) for p in classpath(installed_spark_group()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["resolve", "lock", "path", "install"])
    parser.add_argument("--group", choices=GROUPS)
    parser.add_argument("--from", dest="source", type=Path,
                        help="install: a folder holding the group's jars, resolved from jvm/pom.xml elsewhere")
    args = parser.parse_args(argv)
    if args.command == "install" and not (args.group and args.source):
        parser.error("install needs --group and --from")
    try:
        if args.command == "resolve":
            resolve((args.group,) if args.group else GROUPS)
        elif args.command == "install":
            install(args.group, args.source)
        elif args.command == "lock":
            write_lock((args.group,) if args.group else GROUPS)
        else:
            print(group_dir(args.group or "spark"))
    except JarsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
