"""The AWS APIs of the embedded stack: moto in server mode (S3 for the lake and artifacts,
EMR, Secrets Manager, ...). State is in memory: buckets are created by ``dp up`` (the lake
bucket, so the lake is usable at once) and by ``platform_bootstrap``."""
from __future__ import annotations

import sys

from include.platform.stack.service import Service, StackConfig, http_ok

# Moto's dummy credentials: moto accepts any key; these never reach real AWS.
ACCESS_KEY = "testing"
REGION = "us-east-1"


def endpoint(cfg: StackConfig) -> str:
    return f"http://127.0.0.1:{cfg.moto_port}"


def service(cfg: StackConfig) -> Service:
    return Service(
        name="moto",
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(cfg.moto_port)],
        ready=lambda: http_ok(f"{endpoint(cfg)}/moto-api/"),
        ports=(cfg.moto_port,),
        timeout=30,
    )


def ensure_buckets(cfg: StackConfig, *buckets: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint(cfg), region_name=REGION,
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=ACCESS_KEY)
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for bucket in buckets:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
