"""Small lake files read from the api-server: folder listings and whole files.

The lake is a ``file://`` folder (embedded stack) or S3 (``s3a://`` on moto/MinIO, ``s3://`` on AWS).
Outside Spark there is no Hadoop file system to ask, so S3 goes through the Airflow connection
``aws_conn_id`` (S3Hook), as the streaming health check reads its progress files
(include/streaming/health.py).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def _bucket_and_key(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"not a lake URI the page can read: {uri!r} (file:, s3: or s3a:)")
    return parsed.netloc, parsed.path.strip("/")


def list_folder(uri: str, aws_conn_id: str = "aws_default") -> tuple[list[str], list[str]]:
    """``(folder names, file names)`` directly under ``uri``, sorted; both empty when it does not exist."""
    local = _local_path(uri)
    if local is not None:
        if not local.is_dir():
            return [], []
        entries = sorted(local.iterdir())
        return [p.name for p in entries if p.is_dir()], [p.name for p in entries if p.is_file()]
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket, key = _bucket_and_key(uri)
    prefix = f"{key}/" if key else ""
    hook = S3Hook(aws_conn_id=aws_conn_id)
    folders = hook.list_prefixes(bucket_name=bucket, prefix=prefix, delimiter="/") or []
    files = hook.list_keys(bucket_name=bucket, prefix=prefix, delimiter="/") or []
    return (sorted(p[len(prefix):].rstrip("/") for p in folders),
            sorted(k[len(prefix):] for k in files if k != prefix and not k.endswith("/")))


def read_bytes(uri: str, aws_conn_id: str = "aws_default") -> bytes:
    """The whole file at ``uri`` (FileNotFoundError when there is none)."""
    local = _local_path(uri)
    if local is not None:
        return local.read_bytes()
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket, key = _bucket_and_key(uri)
    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_key(key, bucket):
        raise FileNotFoundError(uri)
    return hook.get_key(key, bucket).get()["Body"].read()
