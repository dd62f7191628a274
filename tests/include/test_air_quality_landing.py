"""Landing: the real CPCB .xlsx export converts to the CSV layout and reads like the CSV export."""
from __future__ import annotations

from pathlib import Path

from include.air_quality.landing import land_files, xlsx_to_csv
from spark_apps.air_quality.convert import convert

REAL_DIR = Path("/work/shared/data/cpcb_bengaluru_hourly")


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
    out = tmp_path / "parquet"
    result = convert(spark, raw.as_uri(), out.as_uri(), (tmp_path / "q").as_uri())
    assert (result.files, result.good_rows, result.bad_rows) == (2, 20102, 0)
    per_file = spark.read.parquet(out.as_uri())
    xlsx_rows = per_file.where(per_file.source_file.endswith("/BWSSB.csv")).drop("source_file")
    csv_rows = per_file.where(per_file.source_file.endswith("/BWSSB_export.csv")).drop("source_file")
    assert xlsx_rows.count() == csv_rows.count() == 10051
    assert xlsx_rows.exceptAll(csv_rows).count() == 0 and csv_rows.exceptAll(xlsx_rows).count() == 0
