"""Landing: the real CPCB .xlsx export converts to the CSV layout and reads like the CSV export."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.air_quality.landing import land_files, land_into_lake, xlsx_to_csv
from include.sample_data import CPCB_BENGALURU_HOURLY
from spark_apps.air_quality.convert import convert

REAL_DIR = CPCB_BENGALURU_HOURLY


def test_xlsx_to_csv_keeps_preamble_and_header_width(tmp_path):
    out = tmp_path / "BWSSB.csv"
    assert xlsx_to_csv(REAL_DIR / "BWSSB.xlsx", out) == 10068  # 16 preamble rows (one empty) + header + 10051 data rows
    lines = out.read_text().splitlines()
    assert lines[6] == 'Station,"BWSSB Kadabesanahalli, Bengaluru - CPCB"'
    assert lines[16] == "From Date,To Date,PM2.5,PM10,NH3,SO2"
    assert lines[17] == "01-04-2020 00:00,01-04-2020 01:00,9.46,None,None,6.91"
    assert lines[-1] == "24-05-2021 18:00,24-05-2021 18:30,None,None,None,None"


def test_landed_xlsx_and_csv_give_the_same_rows(spark, tmp_path):
    raw = tmp_path / "raw"
    landed = land_files(REAL_DIR, raw)
    assert [p.name for p in landed] == ["BWSSB.csv", "BWSSB_export.csv"]
    assert land_files(REAL_DIR, raw) == landed  # idempotent
    # Each landed file on its own: the same rows.
    rows = {}
    for name in ("BWSSB.csv", "BWSSB_export.csv"):
        out = tmp_path / f"parquet_{name}"
        result = convert(spark, (raw / name).as_uri(), out.as_uri(), (tmp_path / f"q_{name}").as_uri())
        assert (result.files, result.good_rows, result.bad_rows, result.duplicate_rows) == (1, 10051, 0, 0)
        rows[name] = spark.read.parquet(out.as_uri()).drop("source_file")
    xlsx_rows, csv_rows = rows["BWSSB.csv"], rows["BWSSB_export.csv"]
    assert xlsx_rows.exceptAll(csv_rows).count() == 0 and csv_rows.exceptAll(xlsx_rows).count() == 0
    # Both together: the same station-hours twice, so each is kept once (from the file that sorts last).
    out = tmp_path / "parquet"
    result = convert(spark, raw.as_uri(), out.as_uri(), (tmp_path / "q").as_uri())
    assert (result.files, result.good_rows, result.bad_rows, result.duplicate_rows) == (2, 10051, 0, 10051)
    kept_from = spark.read.parquet(out.as_uri()).select("source_file").distinct().collect()
    assert [Path(r.source_file).name for r in kept_from] == ["BWSSB_export.csv"]


def _exports(folder: Path) -> Path:
    """Two small exports: a CSV in a subfolder and a one-sheet xlsx."""
    from openpyxl import Workbook

    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "A.csv").write_text("From Date,To Date,PM2.5\n01-01-2024 00:00,01-01-2024 01:00,5\n")
    book = Workbook()
    book.active.append(["From Date", "To Date", "PM2.5"])
    book.active.append(["01-01-2024 00:00", "01-01-2024 01:00", 7.5])
    book.save(folder / "B.xlsx")
    (folder / "notes.txt").write_text("not an export")
    return folder


def test_land_into_a_file_lake(tmp_path):
    source = _exports(tmp_path / "incoming")
    raw = tmp_path / "lake" / "raw"
    landed = land_into_lake(source, raw.as_uri())
    assert landed == [(raw / "2024" / "A.csv").as_uri(), (raw / "B.csv").as_uri()]
    assert (raw / "B.csv").read_text().splitlines()[1] == "01-01-2024 00:00,01-01-2024 01:00,7.5"


@pytest.mark.parametrize("scheme", ["s3a", "s3"])
def test_land_into_an_s3_lake(scheme, tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}))
    source = _exports(tmp_path / "incoming")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        landed = land_into_lake(source, f"{scheme}://lake/lake/raw/air_quality", aws_conn_id="aws_test")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
        b_csv = s3.get_object(Bucket="lake", Key="lake/raw/air_quality/B.csv")["Body"].read().decode()
    # Named in the lake's own scheme (Spark reads them as s3a:// on moto and MinIO).
    assert landed == [f"{scheme}://lake/lake/raw/air_quality/2024/A.csv", f"{scheme}://lake/lake/raw/air_quality/B.csv"]
    assert keys == ["lake/raw/air_quality/2024/A.csv", "lake/raw/air_quality/B.csv"]
    assert b_csv.splitlines() == ["From Date,To Date,PM2.5", "01-01-2024 00:00,01-01-2024 01:00,7.5"]
    assert not list(source.rglob("*.tmp"))


def test_land_into_an_unknown_scheme_fails(tmp_path):
    with pytest.raises(ValueError, match="file://, s3:// or s3a://"):
        land_into_lake(_exports(tmp_path / "incoming"), "hdfs://nn/lake/raw")
