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
