"""Spark on ``s3a://`` against a moto server: the embedded stack's lake (and the code path EMR
runs on ``s3://``). The test session gets the stack's own s3a settings
(``environment.spark_defaults``) for a moto this module starts; every pipeline step that
touches the lake gives the same answer on s3a:// as on file://."""
from __future__ import annotations

import gzip
import os
import uuid
from datetime import date

import pytest

from include.platform import stack
from include.platform.stack import moto
from include.platform.stack.environment import spark_defaults
from spark_apps.common import lake

pytestmark = [pytest.mark.spark, pytest.mark.stack]

HADOOP_PREFIX = "spark.hadoop."


@pytest.fixture(scope="module")
def moto_cfg(tmp_path_factory):
    cfg = stack.StackConfig(home=tmp_path_factory.mktemp("moto-home"), moto_port=stack.free_port())
    stack.start_service(cfg, moto.service(cfg), dict(os.environ))
    yield cfg
    stack.stop_service(cfg, "moto")


@pytest.fixture(scope="module")
def s3_client(moto_cfg):
    import boto3

    return boto3.client("s3", endpoint_url=moto.endpoint(moto_cfg), region_name=moto.REGION,
                        aws_access_key_id=moto.ACCESS_KEY, aws_secret_access_key=moto.ACCESS_KEY)


@pytest.fixture(scope="module")
def s3_lake(spark, moto_cfg):
    """``s3a://<fresh bucket>/lake`` readable and writable by the test session.

    The stack's s3a settings (``spark.hadoop.fs.s3a.*`` of spark-defaults.conf) are set
    on the running session's Hadoop configuration and removed afterwards; the bucket
    name is new, so no cached S3AFileSystem of another endpoint answers for it.
    """
    bucket = f"dp-test-lake-{uuid.uuid4().hex[:8]}"
    moto.ensure_buckets(moto_cfg, bucket)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    settings = {k.removeprefix(HADOOP_PREFIX): v for k, v in spark_defaults(moto_cfg).items()
                if k.startswith(HADOOP_PREFIX)}
    previous = {key: hadoop.get(key) for key in settings}
    for key, value in settings.items():
        hadoop.set(key, value)
    yield f"s3a://{bucket}/lake"
    for key, value in previous.items():
        if value is None:
            hadoop.unset(key)
        else:
            hadoop.set(key, value)


def _keys(s3, uri: str) -> list[str]:
    bucket, _, prefix = uri.removeprefix("s3a://").partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return sorted(o["Key"].removeprefix(prefix.rstrip("/") + "/") for page in pages for o in page.get("Contents", []))


def _upload(s3, local_dir, uri: str) -> None:
    bucket, _, prefix = uri.removeprefix("s3a://").partition("/")
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local_dir).as_posix()}")


def test_settings_point_s3a_at_moto(moto_cfg):
    conf = spark_defaults(moto_cfg)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == moto.endpoint(moto_cfg)
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    # S3A's default part size stays (moto refuses multipart parts under 5 MiB).
    assert not any("multipart" in key for key in conf)


def test_parquet_csv_and_text_round_trip(spark, s3_lake, s3_client):
    df = spark.range(60).selectExpr("id", "concat('s', id % 3) as k", "id * 1.5 as x")
    df.write.mode("overwrite").partitionBy("k").parquet(lake.join(s3_lake, "t", "parquet"))
    df.write.mode("overwrite").option("header", "true").csv(lake.join(s3_lake, "t", "csv"))
    back = spark.read.parquet(lake.join(s3_lake, "t", "parquet")).select("id", "k", "x")
    assert sorted(back.collect()) == sorted(df.collect())
    csv = spark.read.option("header", "true").option("inferSchema", "true").csv(lake.join(s3_lake, "t", "csv"))
    assert sorted(r.id for r in csv.collect()) == list(range(60))
    # The objects are really in the bucket, as boto3 (any S3 client) sees them.
    keys = _keys(s3_client, lake.join(s3_lake, "t"))
    assert "parquet/_SUCCESS" in keys and any(k.startswith("parquet/k=s2/") and k.endswith(".parquet") for k in keys)
    csv_files = [k for k in keys if k.startswith("csv/part-")]
    assert spark.read.text(lake.join(s3_lake, "t", "csv")).count() == 60 + len(csv_files)  # a header each
    # Overwrite replaces, never appends a second copy.
    df.limit(6).write.mode("overwrite").partitionBy("k").parquet(lake.join(s3_lake, "t", "parquet"))
    assert spark.read.parquet(lake.join(s3_lake, "t", "parquet")).count() == 6


def test_lake_side_files(spark, s3_lake):
    summary = lake.join(s3_lake, "reports", "date=2024-01-15", "summary.json")
    lake.write_text(spark, summary, '{"lines": 3, "name": "Bengaluru \u2013 BWSSB"}\n')
    assert lake.exists(spark, summary) and not lake.exists(spark, summary + ".missing")
    assert lake.read_text(spark, summary) == '{"lines": 3, "name": "Bengaluru \u2013 BWSSB"}'
    lake.write_text(spark, summary, "again\n")  # overwrite
    assert lake.read_text(spark, summary) == "again"
    lake.write_text(spark, lake.join(s3_lake, "reports", "date=2024-01-16", "summary.json"), "{}")
    assert lake.glob(spark, lake.join(s3_lake, "reports", "date=*", "summary.json")) == [
        lake.join(s3_lake, "reports", f"date=2024-01-{d}", "summary.json") for d in (15, 16)]
    lake.delete(spark, lake.join(s3_lake, "reports"))
    assert not lake.exists(spark, summary)
    assert lake.glob(spark, lake.join(s3_lake, "reports", "*")) == []


def test_air_quality_conversion_same_on_s3a_as_on_file(spark, s3_lake, s3_client, tmp_path):
    from include.generators.air_quality import generate
    from spark_apps.air_quality.convert import convert

    raw = tmp_path / "raw"
    generate(raw, rows=600, stations=2, seed=5, bad_share=0.005)
    _upload(s3_client, raw, lake.join(s3_lake, "raw", "air_quality"))

    on_file = convert(spark, raw.as_uri(), (tmp_path / "parquet").as_uri(), (tmp_path / "quarantine").as_uri())
    s3_parquet = lake.join(s3_lake, "curated", "air_quality_hourly")
    s3_quarantine = lake.join(s3_lake, "quarantine", "air_quality")
    on_s3 = convert(spark, lake.join(s3_lake, "raw", "air_quality"), s3_parquet, s3_quarantine)

    assert (on_s3.files, on_s3.good_rows, on_s3.bad_rows, on_s3.blank_lines, on_s3.duplicate_rows) == (
        on_file.files, on_file.good_rows, on_file.bad_rows, on_file.blank_lines, on_file.duplicate_rows)
    assert on_s3.files == 2 and on_s3.bad_rows > 0
    keys = _keys(s3_client, s3_parquet)
    assert any(k.startswith("month=") and k.count("/") == 1 and k.endswith(".parquet") for k in keys)

    def rows(uri):
        return spark.read.parquet(uri).drop("source_file")

    file_rows, s3_rows = rows((tmp_path / "parquet").as_uri()), rows(s3_parquet)
    assert file_rows.exceptAll(s3_rows).count() == 0 and s3_rows.exceptAll(file_rows).count() == 0
    # Quarantined rows name their S3 file and line, as on file://.
    bad = spark.read.json(lake.join(s3_quarantine, "rows")).collect()
    assert len(bad) == on_s3.bad_rows
    assert all(r.source_file.startswith(s3_lake + "/raw/air_quality/") and r.line_number > 0 for r in bad)
    assert lake.exists(spark, lake.join(s3_quarantine, "_summary.json"))


def test_access_log_day_same_on_s3a_as_on_file(spark, s3_lake, s3_client, tmp_path):
    from include.generators.access_logs import write_day
    from spark_apps.access_logs import job

    day = date(2024, 1, 15)
    files = write_day(tmp_path / "raw", day, lines=1500, files=2, gzip_files=True, seed=3, malformed_share=0.01)
    (tmp_path / "raw" / f"date={day}" / "README.txt").write_text("not a log")
    _upload(s3_client, tmp_path / "raw", lake.join(s3_lake, "raw", "access_logs"))

    def analysed(folder_uri):
        result = job.analyse_day(spark, folder_uri, top_n=5)
        try:
            summary = job.summary_of(day, result)
            quarantine = result["lines"].quarantine.collect()
        finally:
            result["day"].unpersist()
        return summary, quarantine

    on_file, file_bad = analysed(f"file://{tmp_path}/raw/date={day}")  # as lake.join spells it
    s3_folder = lake.join(s3_lake, "raw", "access_logs", f"date={day}")
    on_s3, s3_bad = analysed(s3_folder)

    total = sum(sum(1 for _ in gzip.open(p, "rb")) for p in files)
    assert on_s3["input_files"] == 2 and on_s3["total_lines"] == total
    assert [name.rsplit("/", 1)[-1] for name in on_s3["ignored_files"]] == ["README.txt"]
    numbers = {k: v for k, v in on_s3.items() if k != "ignored_files"}
    assert numbers == {k: v for k, v in on_file.items() if k != "ignored_files"}
    # Same quarantined lines, now naming the S3 objects.
    assert len(s3_bad) == len(file_bad) == on_s3["quarantined_lines"] > 0
    assert all(f'"file": "{s3_folder}/web-' in line for line in s3_bad)
