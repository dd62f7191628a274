"""Helpers for the stack tests: a private stack configuration (cleanup: ``stack.drop_results_db``)
and boto3 access to its lake, which is ``s3a://`` on the stack's moto."""
from __future__ import annotations

import uuid
from pathlib import Path

from include.platform import stack


def make_config(home: Path) -> stack.StackConfig:
    """A private stack: its own home, ports, metadata DB and results database/user.

    Its lake is S3 (moto's bucket through s3a://), the embedded default and the code path
    EMR runs on s3://.
    """
    suffix = uuid.uuid4().hex[:8]
    return stack.StackConfig(
        home=home,
        airflow_port=stack.free_port(),
        kafka_port=stack.free_port(),
        kafka_controller_port=stack.free_port(),
        moto_port=stack.free_port(),
        cassandra_port=stack.free_port(), cassandra_storage_port=stack.free_port(),
        metadata_db="sqlite",
        results_db=f"dp_it_{suffix}",
        results_user=f"dp_it_{suffix}",
        lake="s3",
    )


class Lake:
    """The stack's lake seen from outside Spark: boto3 against its moto (``AWS_ENDPOINT_URL``).

    URIs are the lake's own (``s3a://bucket/key``); paths below are relative to ``uri``.
    """

    def __init__(self, env: dict[str, str]):
        import boto3

        self.uri = env["DP_LAKE_URI"]
        assert self.uri.startswith("s3a://"), f"the stack tests run on an S3 lake, not {self.uri}"
        self.s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                               aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        self.bucket, _, self.prefix = self.uri.removeprefix("s3a://").partition("/")

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path.strip('/')}" if self.prefix else path.strip("/")

    def files(self, path: str) -> dict[str, int]:
        """``{relative key: size}`` of every object under ``path`` (folder markers left out)."""
        base = self._key(path) + "/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base)
        return {o["Key"].removeprefix(base): o["Size"] for page in pages for o in page.get("Contents", [])
                if not o["Key"].endswith("/")}

    def read(self, path: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=self._key(path))["Body"].read()

    def upload(self, local_dir: Path, path: str) -> list[str]:
        """Every file under ``local_dir`` to ``path``, keeping relative paths; returns the keys."""
        keys = []
        for file in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            key = self._key(f"{path}/{file.relative_to(local_dir).as_posix()}")
            self.s3.upload_file(str(file), self.bucket, key)
            keys.append(key)
        return keys
