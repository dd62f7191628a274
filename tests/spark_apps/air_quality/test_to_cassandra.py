"""Air-quality raw rows into Cassandra: the row mapping on hand-made rows, the choice of rows on
hand-made exports, and the writes against a real Cassandra node (``cassandra_node`` of
tests/spark_apps/conftest.py) - the rows land, a later export's copy of a station-hour replaces
the earlier one whole, a rerun leaves exactly the same rows, and they are the Parquet's rows.

Expected values are computed by hand from the exports below."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from include.cassandra.schema import ensure_schema
from spark_apps.air_quality import tables
from spark_apps.air_quality.convert import TooManyBadRows, convert, superseded_duplicates
from spark_apps.air_quality.reader import one_file_per_partition, parse_raw, plan_files
from spark_apps.air_quality.schema import MEASURE_COLUMNS, PARQUET_SCHEMA
from spark_apps.air_quality.to_cassandra import reading_values, readings_to_write, write_readings
from spark_apps.common.cassandra import connect
from spark_apps.common.session import temporary_conf

pytestmark = pytest.mark.spark

STATION = "Karve Road"
# Line 6 is bad (non-numeric PM2.5), line 7 blank: 4 good rows, 1 quarantined.
EXPORT_A = """\
City,Pune,,
Station,Karve Road,,
From Date,To Date,PM2.5,PM10
01-01-2023 00:00,01-01-2023 01:00,10.5,20
01-01-2023 01:00,01-01-2023 02:00,11,None
01-01-2023 02:00,01-01-2023 03:00,abc,22
,,,
31-01-2023 23:00,01-02-2023 00:00,12,24
01-02-2023 00:00,01-02-2023 01:00,13,25
"""
# A later export of the same station (its name sorts after A's): other columns, no city; its
# 01:00 row supersedes A's, which had PM2.5 11 and the city.
EXPORT_B = """\
Station,Karve Road
From Date,To Date,PM10,WS
01-01-2023 01:00,01-01-2023 02:00,30,1.5
01-01-2023 03:00,01-01-2023 04:00,31,
"""
IST = timedelta(hours=5, minutes=30)


def _row(**values) -> dict:
    return {f.name: values.get(f.name) for f in PARQUET_SCHEMA.fields}


def test_reading_values_map_the_parquet_rows_to_the_insert_columns(spark):
    rows = [
        _row(from_ts=datetime(2023, 1, 1, 0), to_ts=datetime(2023, 1, 1, 1), pm25=10.5, ws=1.2, city="Pune",
             source_file="file:/raw/a.csv", station=STATION, month="2023-01"),
        _row(from_ts=datetime(2023, 1, 31, 23, 30), station=STATION, month="2023-01", source_file="file:/raw/a.csv"),
    ]
    frame = spark.createDataFrame(rows, PARQUET_SCHEMA)
    # The times are the instants of India's wall-clock, whatever the session's zone.
    with temporary_conf(spark, {"spark.sql.session.timeZone": "America/New_York"}):
        values = reading_values(frame).collect()
    assert reading_values(frame).columns == [name for name, _ in tables.READING_COLUMNS]
    # 2023-01-01 00:00 IST = 2022-12-31 18:30 UTC = 1672531200 - 19800 s since the epoch.
    first = values[0].asDict()
    assert (first["station"], first["month"], first["from_ts"], first["to_ts"], first["city"]) == (
        STATION, "2023-01", 1_672_511_400_000, 1_672_515_000_000, "Pune")
    assert (first["pm25"], first["ws"], first["source_file"]) == (10.5, 1.2, "file:/raw/a.csv")
    assert all(first[m] is None for m in MEASURE_COLUMNS if m not in ("pm25", "ws"))
    # 2023-01-31 23:30 IST = 18:00 UTC: 1675123200 (2023-01-31 00:00 UTC) + 18 h.
    second = values[1].asDict()
    assert (second["from_ts"], second["to_ts"], second["city"]) == (1_675_123_200_000 + 18 * 3_600_000, None, None)


def _exports(raw: Path, *names: str) -> str:
    raw.mkdir(parents=True, exist_ok=True)
    texts = {"a_2023-01.csv": EXPORT_A, "b_2023-01.csv": EXPORT_B}
    for name in names:
        (raw / name).write_text(texts[name])
    return raw.as_uri()


def _hour_ms(day: int, hour: int, month: int = 1) -> int:
    return int((datetime(2023, month, day, hour) - IST - datetime(1970, 1, 1)).total_seconds()) * 1000


def test_quarantined_and_superseded_rows_are_left_out_and_replacing_rows_split_off(spark, tmp_path):
    raw = _exports(tmp_path / "raw", "a_2023-01.csv", "b_2023-01.csv")
    plans = plan_files(spark, raw)
    with one_file_per_partition(spark, plans):
        # Persisted as write_readings does: the joins then plan over the cached rows, not over
        # copies of the parser's (large) plan.
        rows = parse_raw(spark, raw, plans).rows.persist()
        duplicates = superseded_duplicates(rows).persist()
        single, replacing = readings_to_write(rows, duplicates)
        single_rows = {(r.station, r.from_ts): (r.pm25, r.pm10, r.ws, r.city) for r in single.collect()}
        replacing_rows = [r.asDict() for r in replacing.collect()]
        rows.unpersist()
        duplicates.unpersist()
    assert single_rows == {
        (STATION, _hour_ms(1, 0)): (10.5, 20.0, None, "Pune"),
        (STATION, _hour_ms(31, 23)): (12.0, 24.0, None, "Pune"),
        (STATION, _hour_ms(1, 0, month=2)): (13.0, 25.0, None, "Pune"),
        (STATION, _hour_ms(1, 3)): (None, 31.0, None, None),
    }
    assert len(replacing_rows) == 1
    kept = replacing_rows[0]
    assert (kept["from_ts"], kept["pm25"], kept["pm10"], kept["ws"], kept["city"]) == (
        _hour_ms(1, 1), None, 30.0, 1.5, None)
    assert kept["source_file"].endswith("/b_2023-01.csv")


@pytest.fixture
def readings_keyspace(cassandra_node):
    keyspace = f"air_quality_{uuid.uuid4().hex[:10]}"
    cluster, session = connect(cassandra_node.config, request_timeout=60)
    try:
        ensure_schema(session, {"class": "SimpleStrategy", "replication_factor": 1},
                      {keyspace: tables.table_statements(keyspace)})
    finally:
        cluster.shutdown()
    return keyspace


def _readings(node, keyspace: str) -> list[tuple]:
    return sorted(tuple(r) for r in node.query(f"SELECT * FROM {keyspace}.{tables.READINGS_TABLE}"))


@pytest.mark.stack
def test_rows_land_a_later_export_replaces_its_station_hour_and_a_rerun_leaves_the_same_rows(
        spark, cassandra_node, readings_keyspace, tmp_path):
    node, keyspace = cassandra_node, readings_keyspace
    raw = _exports(tmp_path / "raw", "a_2023-01.csv")

    # 1 bad row of 5 is above the conversion's 1 %: nothing is written, as no Parquet is.
    with pytest.raises(TooManyBadRows, match="nothing written to Cassandra"):
        write_readings(spark, raw, node.config, keyspace)
    assert _readings(node, keyspace) == []

    first = write_readings(spark, raw, node.config, keyspace, max_bad_share=0.5)
    assert (first.files, first.written, first.replacing, first.bad_rows, first.duplicate_rows) == (1, 4, 0, 1, 0)
    # The query the table is for: one station's month, newest first (times in UTC).
    january = node.query(f"SELECT from_ts, pm25, pm10, city FROM {keyspace}.{tables.READINGS_TABLE} "
                         "WHERE station = %s AND month = %s", (STATION, "2023-01"))
    assert [tuple(r) for r in january] == [
        (datetime(2023, 1, 31, 17, 30), 12.0, 24.0, "Pune"),
        (datetime(2022, 12, 31, 19, 30), 11.0, None, "Pune"),
        (datetime(2022, 12, 31, 18, 30), 10.5, 20.0, "Pune"),
    ]
    assert len(_readings(node, keyspace)) == 4

    # B lands: its copy of 01:00 replaces A's whole (A's PM2.5 and city do not survive).
    _exports(tmp_path / "raw", "b_2023-01.csv")
    second = write_readings(spark, raw, node.config, keyspace, max_bad_share=0.5)
    assert (second.files, second.written, second.replacing, second.bad_rows, second.duplicate_rows) == (2, 5, 1, 1, 1)
    replaced = node.query(f"SELECT pm25, pm10, ws, city, source_file FROM {keyspace}.{tables.READINGS_TABLE} "
                          "WHERE station = %s AND month = %s AND from_ts = %s",
                          (STATION, "2023-01", datetime(2022, 12, 31, 19, 30)))
    assert [tuple(r)[:4] for r in replaced] == [(None, 30.0, 1.5, None)]
    assert replaced[0].source_file.endswith("/b_2023-01.csv")
    after_second = _readings(node, keyspace)
    assert len(after_second) == 5

    # A rerun on the same exports: exactly the same rows.
    write_readings(spark, raw, node.config, keyspace, max_bad_share=0.5)
    assert _readings(node, keyspace) == after_second

    # A Kaggle daily file beside them: its row is counted as such and not written (no hourly reading).
    (tmp_path / "raw" / "station_day.csv").write_text("StationId,Date,PM2.5,PM10,AQI,AQI_Bucket\n"
                                                      "KA001,2023-01-02,40.5,80,61,Satisfactory\n")
    third = write_readings(spark, raw, node.config, keyspace, max_bad_share=0.5)
    assert (third.files, third.written, third.daily_rows) == (3, 5, 1)
    assert _readings(node, keyspace) == after_second
    (tmp_path / "raw" / "station_day.csv").unlink()

    # And they are the conversion's Parquet rows (times shifted from India's wall-clock to UTC).
    parquet = tmp_path / "parquet"
    convert(spark, raw, parquet.as_uri(), (tmp_path / "quarantine").as_uri(), max_bad_share=0.5)
    columns = [name for name, _ in tables.READING_COLUMNS]
    from_parquet = sorted(
        tuple(r[c] - IST if c in ("from_ts", "to_ts") and r[c] is not None else r[c] for c in columns)
        for r in spark.read.parquet(parquet.as_uri()).collect())
    in_cassandra = sorted(tuple(getattr(r, c) for c in columns)
                          for r in node.query(f"SELECT * FROM {keyspace}.{tables.READINGS_TABLE}"))
    assert in_cassandra == from_parquet
