"""Reading CPCB exports: header/preamble handling, typing, quarantine, the real export."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from include.sample_data import CPCB_BENGALURU_HOURLY
from spark_apps.air_quality.convert import TooManyBadRows, convert
from spark_apps.air_quality.reader import (
    HEAD_CHARS,
    FileSplitError,
    check_line_numbers,
    file_key,
    file_key_spellings,
    names_from_file_name,
    one_file_per_partition,
    plan_file,
    plan_files,
    read_heads,
    read_lines,
)
from spark_apps.air_quality.schema import canonical_column
from spark_apps.common import data_quality

REAL_DIR = CPCB_BENGALURU_HOURLY
REAL_STATION = "BWSSB Kadabesanahalli, Bengaluru - CPCB"
# The README says 10,050 rows; the file holds every hour from 01-04-2020 00:00 to
# 24-05-2021 18:00 inclusive (no duplicates): 10,051 data lines after the header (line 16).
REAL_ROWS = 10051


@pytest.mark.parametrize(
    "cell, name",
    [("From Date", "from_ts"), ("PM2.5 (ug/m3)", "pm25"), (" pm 2.5 ", "pm25"), ("TOT-RF (mm)", "tot_rf"),
     ("Ozone [µg/m³]", "ozone"), ("NOx (ppb)", "nox"), ("Station", "station"), ("MP-Xylene", None)],
)
def test_header_cells_map_to_canonical_names(cell, name):
    assert canonical_column(cell) == name


def test_plan_reads_preamble_and_falls_back_to_file_name():
    head = (REAL_DIR / "BWSSB_export.csv").read_text()[:4000]
    plan = plan_file("file:/x/BWSSB_export.csv", head)
    assert (plan.header_line, plan.station, plan.city, plan.problem) == (16, REAL_STATION, "Bengaluru", None)
    assert plan.columns == ["from_ts", "to_ts", "pm25", "pm10", "nh3", "so2"]
    bare = plan_file("file:/x/Delhi__ITO.csv", "From Date,To Date,PM10\n01-01-2023 00:00,01-01-2023 01:00,4\n")
    assert (bare.header_line, bare.station, bare.city) == (1, "ITO", "Delhi")
    assert names_from_file_name("s3://b/raw/Anand%20Vihar.csv") == ("Anand Vihar", None)
    assert plan_file("file:/x/notes.csv", "hello,world\n").problem.startswith("no header line")


def test_real_cpcb_csv_export(spark, tmp_path):
    out = tmp_path / "parquet"
    result = convert(spark, REAL_DIR.as_uri(), out.as_uri(), (tmp_path / "q").as_uri())
    assert (result.files, result.good_rows, result.bad_rows) == (1, REAL_ROWS, 0)
    df = spark.read.parquet(out.as_uri())
    assert df.count() == REAL_ROWS
    assert [r[0] for r in df.select("station").distinct().collect()] == [REAL_STATION]
    first = df.orderBy("from_ts").first()
    # first data line: 01-04-2020 00:00,01-04-2020 01:00,9.46,None,None,6.91
    assert (first.from_ts, first.to_ts, first.pm25, first.pm10, first.nh3, first.so2, first.city) == (
        datetime(2020, 4, 1, 0), datetime(2020, 4, 1, 1), 9.46, None, None, 6.91, "Bengaluru")
    stats = df.agg(F.max("from_ts"), F.countDistinct("month"), F.count("pm25"), F.min("pm25"), F.max("pm25")).first()
    assert stats[0] == datetime(2021, 5, 24, 18) and stats[1] == 14  # Apr 2020 .. May 2021
    assert stats[2] > 5000 and 0 <= stats[3] and stats[4] < 1000  # µg/m³, plausible
    # One folder per month, one file in each (the station is a column, not a folder), its rows
    # sorted by station and hour.
    months = [f"2020-{m:02d}" for m in range(4, 13)] + [f"2021-{m:02d}" for m in range(1, 6)]
    files = sorted(out.rglob("*.parquet"))
    assert [str(f.parent.relative_to(out)) for f in files] == [f"month={m}" for m in months]
    for f in files:
        table = pq.read_table(f)
        assert "station" in table.column_names and "month" not in table.column_names
        times = table.column("from_ts").to_pylist()
        assert times == sorted(times)
    # A rerun of the same input replaces the output instead of adding to it.
    again = convert(spark, REAL_DIR.as_uri(), out.as_uri(), (tmp_path / "q").as_uri())
    assert again.good_rows == REAL_ROWS and spark.read.parquet(out.as_uri()).count() == REAL_ROWS


BROKEN_EXPORT = """\
CENTRAL POLLUTION CONTROL BOARD,,,,
City,Pune,,,
Station,"Karve Road, Pune - MPCB",,,
From Date,To Date,PM2.5 (ug/m3),PM10 (ug/m3),WS (m/s),,
01-01-2023 00:00,01-01-2023 01:00,10.5,NA,1.2,,
01-01-2023 01:00,01-01-2023 02:00,,None,-
,,,,,,
2023-01-01 02:00:00,2023-01-01 03:00:00,NaN,20,0.5
32-01-2023 03:00,01-01-2023 04:00,11,21,0.4
01-01-2023 04:00,01-01-2023 05:00,abc,21,0.4
01-01-2023 05:00,01-01-2023 06:00,11,21
01-01-2023 06:00,01-01-2023 07:00,11,21,0.4,7
"""


def test_broken_rows_go_to_quarantine_with_reasons(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "karve.csv").write_text(BROKEN_EXPORT)
    (raw / "notes.csv").write_text("just,some\nother,file\n")
    out, quarantine = tmp_path / "parquet", tmp_path / "quarantine"
    with pytest.raises(TooManyBadRows):
        convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri(), max_bad_share=0.5)
    assert not out.exists()  # nothing written when the threshold is exceeded ...
    bad = [json.loads(line) for f in sorted((quarantine / "rows").glob("*.json")) for line in f.read_text().splitlines()]
    by_line = {(Path(b["source_file"]).name, b["line_number"]): b for b in bad}
    # ... but every bad row is kept, with its reason and raw text
    assert len(bad) == 6
    assert by_line[("karve.csv", 9)]["reason"] == "unparseable From Date: '32-01-2023 03:00'"
    assert by_line[("karve.csv", 10)]["reason"] == "non-numeric pm25: 'abc'"
    assert by_line[("karve.csv", 11)]["reason"] == "wrong number of fields: expected 5, got 4"
    assert by_line[("karve.csv", 12)]["line"] == "01-01-2023 06:00,01-01-2023 07:00,11,21,0.4,7"
    assert by_line[("notes.csv", 1)]["reason"].startswith("no header line")
    summary = json.loads((quarantine / "_summary.json").read_text())
    assert (summary["good_rows"], summary["bad_rows"], summary["blank_lines"]) == (3, 6, 1)

    result = convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri(), max_bad_share=0.7)
    assert (result.good_rows, result.bad_rows, result.blank_lines) == (3, 6, 1)
    rows = spark.read.parquet(out.as_uri()).orderBy("from_ts").collect()
    assert [(r.from_ts.hour, r.pm25, r.pm10, r.ws, r.station, r.city, r.month) for r in rows] == [
        (0, 10.5, None, 1.2, "Karve Road, Pune - MPCB", "Pune", "2023-01"),  # padding ",," tolerated
        (1, None, None, None, "Karve Road, Pune - MPCB", "Pune", "2023-01"),  # '', None, '-' = missing
        (2, None, 20.0, 0.5, "Karve Road, Pune - MPCB", "Pune", "2023-01"),  # ISO dates accepted
    ]


QUOTED_EXPORT = """\
From Date,To Date,PM2.5,PM10,NO2,WS
01-01-2023 00:00,01-01-2023 01:00,"12.5", n/a ,"None",-1.5
01-01-2023 01:00,01-01-2023 02:00,Infinity,NULL,-,"0,5"
"01-01-2023 02:00", 01-01-2023 03:00 ,1,2,3,4
01-01-2023 03:00,,1,2,3,4
,01-01-2023 05:00,1,2,3,4
01-01-2023 05:00,01-01-2023 06:00:30,1,2,3,4,,
"""


def test_quoted_cells_missing_value_tokens_and_non_finite_numbers(spark, tmp_path):
    """Spark's CSV parser takes quotes and spaces off; missing-value tokens (any case, quoted or
    not) are null, a negative number is a number; 'Infinity' and a quoted '0,5' are not numbers."""
    raw, out, quarantine = tmp_path / "raw", tmp_path / "parquet", tmp_path / "q"
    raw.mkdir()
    (raw / "Delhi__ITO.csv").write_text(QUOTED_EXPORT)
    result = convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri(), max_bad_share=0.5)
    assert (result.good_rows, result.bad_rows, result.blank_lines) == (4, 2, 0)
    bad = [json.loads(line) for f in (quarantine / "rows").glob("*.json") for line in f.read_text().splitlines()]
    assert sorted((b["line_number"], b["reason"]) for b in bad) == [
        (3, "non-numeric pm25: 'Infinity'; non-numeric ws: '0,5'"),
        (6, "unparseable From Date: <missing>"),
    ]
    rows = spark.read.parquet(out.as_uri()).orderBy("from_ts").collect()
    assert [(r.from_ts, r.to_ts, r.pm25, r.pm10, r.no2, r.ws, r.station, r.city) for r in rows] == [
        (datetime(2023, 1, 1, 0), datetime(2023, 1, 1, 1), 12.5, None, None, -1.5, "ITO", "Delhi"),
        (datetime(2023, 1, 1, 2), datetime(2023, 1, 1, 3), 1.0, 2.0, 3.0, 4.0, "ITO", "Delhi"),
        (datetime(2023, 1, 1, 3), None, 1.0, 2.0, 3.0, 4.0, "ITO", "Delhi"),  # To Date may be empty
        (datetime(2023, 1, 1, 5), datetime(2023, 1, 1, 6, 0, 30), 1.0, 2.0, 3.0, 4.0, "ITO", "Delhi"),  # padding
    ]


def test_a_failed_conversion_keeps_the_previous_parquet(spark, tmp_path):
    """A new export with too many bad rows fails the run: the Parquet of the last good run stays
    as it was (the jobs keep reading it), and the new bad rows are in quarantine."""
    raw, out, quarantine = tmp_path / "raw", tmp_path / "parquet", tmp_path / "quarantine"
    raw.mkdir()
    (raw / "karve.csv").write_text(BROKEN_EXPORT)
    convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri(), max_bad_share=0.7)
    before = sorted(tuple(r) for r in spark.read.parquet(out.as_uri()).collect())
    files_before = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    assert len(before) == 3

    preamble = "\n".join(BROKEN_EXPORT.splitlines()[:4]).replace("Karve Road", "Shivajinagar")
    (raw / "shivajinagar.csv").write_text(preamble + "\n" + "".join(f"not-a-date-{i},x,1,2,3\n" for i in range(20)))
    with pytest.raises(TooManyBadRows):
        convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri(), max_bad_share=0.7)
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == files_before
    assert sorted(tuple(r) for r in spark.read.parquet(out.as_uri()).collect()) == before
    bad = [json.loads(line) for f in (quarantine / "rows").glob("*.json") for line in f.read_text().splitlines()]
    assert sum(Path(b["source_file"]).name == "shivajinagar.csv" for b in bad) == 20


def test_file_key_gives_one_spelling_per_file():
    assert file_key("file:///tmp/raw/a%20b.csv") == "file:/tmp/raw/a%20b.csv"
    assert file_key("file:/tmp/raw/a.csv") == "file:/tmp/raw/a.csv"
    assert file_key("s3a://lake/raw/a.csv") == "s3a://lake/raw/a.csv"
    # ... and the rows' _metadata.file_path join it in either spelling (listed on the driver).
    assert file_key_spellings("file:/tmp/raw/a%20b.csv") == ["file:/tmp/raw/a%20b.csv", "file:///tmp/raw/a%20b.csv"]
    assert file_key_spellings("s3a://lake/raw/a.csv") == ["s3a://lake/raw/a.csv"]


def test_read_heads_reads_only_the_head_of_each_csv(spark, tmp_path):
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "sub dir" / "Pune__Karve Road.csv").write_text("From Date,PM10\n01-01-2023 00:00,4\n")
    (tmp_path / "big.CSV").write_text("From Date,PM10\n" + "01-01-2023 00:00,4\n" * 10000)
    (tmp_path / "notes.txt").write_text("not an export\n")
    heads = {key: head for key, head, _ in read_heads(spark, tmp_path.as_uri())}
    # Keys are spelled like the rows' _metadata.file_path (file:/..., percent-encoded).
    assert set(heads) == {
        f"file:{tmp_path}/sub%20dir/Pune__Karve%20Road.csv".replace(" ", "%20"),
        f"file:{tmp_path}/big.CSV",
    }
    assert heads[f"file:{tmp_path}/big.CSV"] == ("From Date,PM10\n" + "01-01-2023 00:00,4\n" * 10000)[:HEAD_CHARS]
    rows = read_lines(spark, tmp_path.as_uri()).select("source_file").distinct().collect()
    assert {r.source_file for r in rows} == set(heads)


def _numbered_lines(spark, raw_dir: Path) -> dict[tuple[str, int], str]:
    return {(Path(r.source_file).name, r.line_number): r.line for r in read_lines(spark, raw_dir.as_uri()).collect()}


def test_lines_are_numbered_per_file_whatever_the_file_sizes(spark, tmp_path):
    """A file larger than Spark's default split and small files, numbered like `nl -ba`."""
    big = "".join(f"line {i}\n" for i in range(1, 300_001))  # 3.3 MB, above the 1 MB floor
    (tmp_path / "big.csv").write_text(big)
    (tmp_path / "a.csv").write_text("first\n\nthird\r\nfourth")  # blank line, CRLF, no final newline
    (tmp_path / "b.csv").write_text("only\n")
    (tmp_path / "empty.csv").write_text("")
    plans = plan_files(spark, tmp_path.as_uri())
    assert {Path(p.path).name: p.size for p in plans} == {"big.csv": len(big), "a.csv": 20, "b.csv": 5, "empty.csv": 0}
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(256 * 1024))  # would split big.csv into 13
    try:
        with one_file_per_partition(spark, plans):
            got = _numbered_lines(spark, tmp_path)
        assert spark.conf.get("spark.sql.files.maxPartitionBytes") == str(256 * 1024)  # restored
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert len(got) == 300_000 + 5
    assert all(got[("big.csv", n)] == f"line {n}" for n in range(1, 300_001))
    assert {k: v for k, v in got.items() if k[0] != "big.csv"} == {
        ("a.csv", 1): "first", ("a.csv", 2): "", ("a.csv", 3): "third", ("a.csv", 4): "fourth", ("b.csv", 1): "only",
    }


def test_line_numbers_of_split_or_packed_files_are_refused(spark, tmp_path):
    (tmp_path / "big.csv").write_text("".join(f"line {i}\n" for i in range(1, 30001)))
    (tmp_path / "small_1.csv").write_text("x\ny\n")
    (tmp_path / "small_2.csv").write_text("z\n")
    previous = {k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")}
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(64 * 1024))  # big.csv split in 4 ...
    spark.conf.set("spark.sql.files.openCostInBytes", "0")  # ... the small ones packed into a partition
    try:
        lines = read_lines(spark, tmp_path.as_uri())
        per_file = {
            r.source_file: (r["count"], r.last)
            for r in lines.groupBy("source_file").agg(F.count("*").alias("count"), F.max("line_number").alias("last")).collect()
        }
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
    assert per_file[next(f for f in per_file if f.endswith("big.csv"))][0] == 30000
    with pytest.raises(FileSplitError, match="big.csv.*small_2.csv"):
        check_line_numbers(per_file)
    check_line_numbers({"file:/a.csv": (3, 3), "file:/empty.csv": (0, 0)})


def test_duplicate_station_hours_are_left_out_and_listed(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    preamble = 'Station,"Karve Road, Pune - MPCB"\nCity,Pune\n'
    header = "From Date,To Date,PM2.5\n"
    (raw / "karve_jan_a.csv").write_text(
        preamble + header + "01-01-2023 00:00,01-01-2023 01:00,10\n01-01-2023 01:00,01-01-2023 02:00,11\n"
        "01-01-2023 02:00,01-01-2023 03:00,12\n"
    )
    (raw / "karve_jan_b.csv").write_text(  # a later export: overlaps by two hours, one value revised
        preamble + header + "01-01-2023 01:00,01-01-2023 02:00,11\n01-01-2023 02:00,01-01-2023 03:00,99\n"
        "01-01-2023 03:00,01-01-2023 04:00,13\n"
    )
    (raw / "ito.csv").write_text('Station,ITO\n' + header + "01-01-2023 01:00,01-01-2023 02:00,50\n")
    out, quarantine = tmp_path / "parquet", tmp_path / "q"
    for _ in range(2):  # a rerun gives the same result
        result = convert(spark, raw.as_uri(), out.as_uri(), quarantine.as_uri())
        assert (result.good_rows, result.bad_rows, result.duplicate_rows) == (5, 0, 2)
        got = sorted(
            (r.station, r.from_ts.hour, r.pm25, Path(r.source_file).name)
            for r in spark.read.parquet(out.as_uri()).collect()
        )
        assert got == [
            ("ITO", 1, 50.0, "ito.csv"),
            ("Karve Road, Pune - MPCB", 0, 10.0, "karve_jan_a.csv"),
            ("Karve Road, Pune - MPCB", 1, 11.0, "karve_jan_b.csv"),
            ("Karve Road, Pune - MPCB", 2, 99.0, "karve_jan_b.csv"),
            ("Karve Road, Pune - MPCB", 3, 13.0, "karve_jan_b.csv"),
        ]
    # Both stations' hours of January in one file, sorted by station and hour, and the row
    # group's statistics bound its stations (what lets a per-station read skip row groups).
    (january,) = out.rglob("*.parquet")
    assert january.parent.name == "month=2023-01"
    table = pq.read_table(january)
    assert [(s, t.hour) for s, t in zip(table.column("station").to_pylist(), table.column("from_ts").to_pylist())] == [
        ("ITO", 1), ("Karve Road, Pune - MPCB", 0), ("Karve Road, Pune - MPCB", 1), ("Karve Road, Pune - MPCB", 2),
        ("Karve Road, Pune - MPCB", 3)]
    meta = pq.ParquetFile(january).metadata
    station_stats = meta.row_group(0).column(table.column_names.index("station")).statistics
    assert (station_stats.min, station_stats.max) == ("ITO", "Karve Road, Pune - MPCB")
    listed = [json.loads(line) for f in sorted((quarantine / "duplicates").glob("*.json")) for line in f.read_text().splitlines()]
    assert [(Path(d["source_file"]).name, d["line_number"]) for d in listed] == [("karve_jan_a.csv", 5), ("karve_jan_a.csv", 6)]
    assert listed[1]["reason"].startswith("duplicate station-hour Karve Road, Pune - MPCB 2023-01-01 02:00: kept ")
    assert listed[1]["reason"].endswith("karve_jan_b.csv line 5")
    assert json.loads((quarantine / "_summary.json").read_text())["duplicate_rows"] == 2


def _data_quality_rows(db, raw_uri: str) -> int:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM data_quality_runs WHERE pipeline = 'air_quality' AND run_key = %s",
                        (raw_uri,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_each_run_records_its_data_quality_row_and_a_rerun_replaces_it(spark, results_db, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "karve.csv").write_text(BROKEN_EXPORT)
    (raw / "notes.csv").write_text("just,some\nother,file\n")
    out, quarantine = (tmp_path / "parquet").as_uri(), (tmp_path / "quarantine").as_uri()
    # A failed run records its row too: it is the one a user looks up first.
    with pytest.raises(TooManyBadRows):
        convert(spark, raw.as_uri(), out, quarantine, max_bad_share=0.5, db=results_db)
    # 3 good rows; karve.csv lines 9 (date), 10 (pm25), 11 and 12 (fields) and both lines of notes.csv bad
    no_header = f"no header line starting with 'From Date' in the first {HEAD_CHARS} characters"
    assert data_quality.read_run(results_db, "air_quality", raw.as_uri()) == {
        "input_uri": raw.as_uri(), "total_rows": 9, "bad_rows": 6,
        "reasons": {no_header: 2, "wrong number of fields": 2, "non-numeric pm25": 1, "unparseable From Date": 1}}

    (raw / "notes.csv").unlink()
    convert(spark, raw.as_uri(), out, quarantine, max_bad_share=0.7, db=results_db)
    assert _data_quality_rows(results_db, raw.as_uri()) == 1  # replaced, not added
    assert data_quality.read_run(results_db, "air_quality", raw.as_uri()) == {
        "input_uri": raw.as_uri(), "total_rows": 7, "bad_rows": 4,
        "reasons": {"wrong number of fields": 2, "non-numeric pm25": 1, "unparseable From Date": 1}}
    assert json.loads((tmp_path / "quarantine" / "_summary.json").read_text())["reasons"] == {
        "wrong number of fields": 2, "non-numeric pm25": 1, "unparseable From Date": 1}
