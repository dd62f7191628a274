"""Upload a set of local files under one root to an s3:// prefix, keeping relative paths.

No provider operator uploads a folder (LocalFilesystemToS3Operator takes one file), so
tasks that ship a tree (the Spark artifact, landed exports) use this over the S3Hook.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


def upload_files(aws_conn_id: str, root: Path, files: Iterable[Path], target_uri: str) -> list[str]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    bucket, _, prefix = target_uri.split("://", 1)[1].partition("/")
    uploaded = []
    for path in files:
        key = f"{prefix.rstrip('/')}/{Path(path).relative_to(root).as_posix()}".lstrip("/")
        hook.load_file(str(path), key=key, bucket_name=bucket, replace=True)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded
