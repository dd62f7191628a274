"""The air-quality benchmark's DuckDB end-to-end reference does the same conversion as the platform
on hand-checkable input (its timings are never checked)."""
import csv
import importlib.util
from pathlib import Path

import duckdb
import pytest

from include.generators.air_quality import generate, write_kaggle_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_module():
    spec = importlib.util.spec_from_file_location("bench_air_quality", ROOT / "bench" / "bench_air_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(out: Path, sql: str):
    con = duckdb.connect()
    try:
        return con.execute(sql.format(data=f"read_parquet('{out}/**/*.parquet', hive_partitioning = true)")).fetchall()
    finally:
        con.close()


def test_duckdb_reference_converts_kaggle_files_with_station_names(bench_module, tmp_path):
    # 2 stations x 2 days of hours; the city-hour file adds one row per city and hour.
    write_kaggle_files(tmp_path / "raw", stations=2, days=2, seed=3, resaved=True)
    bench_module.run_duckdb_end_to_end(tmp_path / "raw", tmp_path / "out")
    with open(tmp_path / "raw" / "stations.csv", encoding="utf-8-sig", newline="") as f:
        listed = list(csv.DictReader(f))
    expected = {row["StationName"]: 48 for row in listed} | {row["City"]: 48 for row in listed}
    rows = dict(_rows(tmp_path / "out", "SELECT station, COUNT(*) FROM {data} GROUP BY station"))
    # station-hour rows are named by stations.csv (not by their StationId), city-hour rows by their city
    assert rows == expected
    months = {r[0] for r in _rows(tmp_path / "out", "SELECT DISTINCT month FROM {data}")}
    assert months == {"2023-01"}  # the generator's start; the re-saved DD-MM-YYYY times parsed


def test_duckdb_reference_keeps_the_good_rows_of_cpcb_exports(bench_module, tmp_path):
    generated = generate(tmp_path / "raw", rows=3000, stations=3, seed=5, bad_share=0.0)
    bench_module.run_duckdb_end_to_end(tmp_path / "raw", tmp_path / "out")
    rows = dict(_rows(tmp_path / "out", "SELECT station, COUNT(*) FROM {data} GROUP BY station"))
    assert sum(rows.values()) == generated.data_rows == 3000
    assert set(rows) == {f.station for f in generated.files}
    files, median = bench_module.parquet_files(tmp_path / "out")
    assert files >= 1 and median > 0
