"""The data lake is addressed by URI only: ``s3a://dataplatform-lake/lake`` on the embedded
stack's moto (``file:///...`` with ``DP_LAKE=file``), ``s3a://`` against MinIO in
docker-compose, ``s3://bucket/prefix`` on EMR (EMRFS).

Spark reads and writes all of them natively (s3a through ``hadoop-aws`` and the AWS SDK v2
jars of ``jvm/pom.xml``, configured in the stack's ``spark-defaults.conf``); small side
files (summaries, quarantine reports) go through Hadoop's FileSystem API from the driver
so the same code works on every scheme without boto3 or local-path special cases.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # join() is used by DAG files, which must not import Spark at parse time
    from pyspark.sql import SparkSession


def join(base: str, *parts: str) -> str:
    """Join URI parts with single slashes: join('s3://b/lake/', 'raw', 'x') -> 's3://b/lake/raw/x'."""
    out = base.rstrip("/")
    for part in parts:
        part = str(part).strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def fs_and_path(spark: SparkSession, uri: str):
    """Hadoop ``(FileSystem, Path)`` of ``uri``: the file system Spark itself reads it with."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, path


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write (overwrite) one small text file at ``uri``."""
    write_bytes(spark, uri, text.encode("utf-8"))


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Write (overwrite) one small file at ``uri`` (on S3 the object appears whole when closed)."""
    fs, path = fs_and_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def read_text(spark: SparkSession, uri: str) -> str:
    fs, path = fs_and_path(spark, uri)
    stream = fs.open(path)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        lines = []
        line = reader.readLine()
        while line is not None:
            lines.append(line)
            line = reader.readLine()
        return "\n".join(lines)
    finally:
        stream.close()


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = fs_and_path(spark, uri)
    return bool(fs.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    fs, path = fs_and_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def glob(spark: SparkSession, pattern: str) -> list[str]:
    """URIs matching a Hadoop glob ``pattern`` (``*``, ``?``, ``[...]``, ``{a,b}``), sorted."""
    fs, path = fs_and_path(spark, pattern)
    return sorted(str(status.getPath().toString()) for status in (fs.globStatus(path) or []))
