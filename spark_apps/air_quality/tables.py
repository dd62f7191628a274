"""The air-quality pipeline's Cassandra table: keyspace ``air_quality``, table ``hourly_readings``.

Statements only (no session, no DataFrame): ``platform_bootstrap`` (include/cassandra/schema.py)
creates the table from this statement, ``to_cassandra.py`` writes with the INSERT built from the
same column list (the statement builders are the weather tables', so both keyspaces are declared
the same way; the measures are the Parquet schema's).

Designed for the query "one station's readings of a month, newest first"::

    SELECT * FROM air_quality.hourly_readings WHERE station = ? AND month = '2020-04'

* partition ``(station, month)``: ``month`` is the station's local month (``YYYY-MM``, as the
  Parquet dataset's ``month=`` partitions), so a partition holds at most 744 hourly rows (2,976 for
  a 15-minute export): bounded whatever the station's history;
* clustering ``from_ts DESC``: the newest reading first, "the last N hours" is the start of a
  partition.

Times: CPCB exports give Indian wall-clock time without a zone (the Parquet dataset keeps it as
``TIMESTAMP_NTZ``); a Cassandra ``timestamp`` is an instant, so ``from_ts``/``to_ts`` hold the
instant of that wall-clock time in India's zone (``Asia/Kolkata``, UTC+05:30 all year).

Writes are upserts of whole rows (INSERT, no counters or collections): a rerun of the
conversion writes the same rows again and changes nothing.
"""
from __future__ import annotations

from spark_apps.air_quality.schema import MEASURE_COLUMNS
from spark_apps.streaming.weather.tables import create_table_cql, insert_cql

KEYSPACE = "air_quality"
READINGS_TABLE = "hourly_readings"
# The zone of the wall-clock times in CPCB exports (India has one, without daylight saving).
CPCB_TIME_ZONE = "Asia/Kolkata"

# (name, CQL type) in INSERT order; the key columns first.
READING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("station", "text"), ("month", "text"), ("from_ts", "timestamp"),
    ("to_ts", "timestamp"), ("city", "text"),
    *((name, "double") for name in MEASURE_COLUMNS),
    ("source_file", "text"),
)
READINGS_KEY = "PRIMARY KEY ((station, month), from_ts)"
READINGS_ORDER = "CLUSTERING ORDER BY (from_ts DESC)"


def table_statements(keyspace: str = KEYSPACE) -> dict[str, str]:
    """``{table: CREATE TABLE IF NOT EXISTS ...}`` of the keyspace's tables."""
    return {READINGS_TABLE: create_table_cql(keyspace, READINGS_TABLE, READING_COLUMNS, READINGS_KEY, READINGS_ORDER)}


def readings_insert(keyspace: str = KEYSPACE) -> str:
    return insert_cql(keyspace, READINGS_TABLE, READING_COLUMNS)
