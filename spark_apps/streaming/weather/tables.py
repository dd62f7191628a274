"""The weather pipeline's tables: Cassandra keyspace ``weather`` and MySQL ``weather_hourly``.

No Spark import here: ``platform_bootstrap`` (include/cassandra/schema.py) creates the Cassandra
tables from these statements, the streaming job writes with the INSERTs built from the same
column lists.

Designed for their queries, with partitions bounded in size:

* ``observations``: one row per observation (city, ``dt``), partition ``(city_id, day)`` (UTC
  day of the observation: at most 144 rows at OpenWeatherMap's 10-minute update cadence),
  newest first (``observed_at DESC``). "A city's observations of the last N hours" reads one
  or two partitions from their start.
* ``hourly``: one row per city and UTC hour, partition ``(city_id, month)`` (``YYYY-MM``: at most
  744 rows), newest hour first. "A city's last N hours / this month" is one partition.

Writes are upserts of whole rows (INSERT, no counters, no collections, no ``now()``/``uuid()``):
writing a row again, or replaying a micro-batch, leaves the same rows.
"""
from __future__ import annotations

KEYSPACE = "weather"
OBSERVATIONS_TABLE = "observations"
HOURLY_TABLE = "hourly"
MYSQL_HOURLY_TABLE = "weather_hourly"
MYSQL_HOURLY_KEYS = ("city_id", "hour_start")

# (name, CQL type) in INSERT order; the key columns first.
OBSERVATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("city_id", "bigint"), ("day", "date"), ("observed_at", "timestamp"),
    ("city_name", "text"), ("country", "text"), ("lon", "double"), ("lat", "double"),
    ("condition_id", "int"), ("condition", "text"), ("description", "text"), ("icon", "text"),
    ("temp", "double"), ("feels_like", "double"), ("temp_min", "double"), ("temp_max", "double"),
    ("pressure", "int"), ("humidity", "int"), ("sea_level", "int"), ("grnd_level", "int"),
    ("visibility", "int"), ("wind_speed", "double"), ("wind_deg", "int"), ("wind_gust", "double"),
    ("clouds", "int"), ("rain_1h", "double"), ("snow_1h", "double"),
    ("sunrise", "timestamp"), ("sunset", "timestamp"), ("timezone_s", "int"),
    ("source_topic", "text"), ("source_partition", "int"), ("source_offset", "bigint"),
    ("ingested_at", "timestamp"),
)
OBSERVATION_KEY = "PRIMARY KEY ((city_id, day), observed_at)"
OBSERVATION_ORDER = "CLUSTERING ORDER BY (observed_at DESC)"

HOURLY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("city_id", "bigint"), ("month", "text"), ("hour", "timestamp"),
    ("city_name", "text"), ("observations", "int"),
    ("temp_min", "double"), ("temp_max", "double"), ("temp_mean", "double"),
    ("humidity_min", "int"), ("humidity_max", "int"), ("humidity_mean", "double"),
    ("wind_speed_mean", "double"), ("wind_speed_max", "double"), ("wind_gust_max", "double"),
    ("rain_1h_sum", "double"), ("rain_1h_max", "double"), ("snow_1h_sum", "double"),
)
HOURLY_KEY = "PRIMARY KEY ((city_id, month), hour)"
HOURLY_ORDER = "CLUSTERING ORDER BY (hour DESC)"

# The hourly aggregate columns MySQL gets (same names; the hour as hour_start, no month).
MYSQL_HOURLY_COLUMNS: tuple[str, ...] = (
    "city_id", "hour_start", *(name for name, _ in HOURLY_COLUMNS[3:]),
)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or name[0].isdigit():
        raise ValueError(f"not a safe CQL identifier: {name!r}")
    return name


def create_table_cql(keyspace: str, table: str, columns, key: str, order: str) -> str:
    body = ", ".join(f"{_ident(name)} {cql_type}" for name, cql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {_ident(keyspace)}.{_ident(table)} ({body}, {key}) WITH {order}"


def insert_cql(keyspace: str, table: str, columns) -> str:
    names = [_ident(name) for name, _ in columns]
    return (f"INSERT INTO {_ident(keyspace)}.{_ident(table)} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})")


def table_statements(keyspace: str = KEYSPACE) -> dict[str, str]:
    """``{table: CREATE TABLE IF NOT EXISTS ...}`` of the keyspace's tables."""
    return {
        OBSERVATIONS_TABLE: create_table_cql(keyspace, OBSERVATIONS_TABLE, OBSERVATION_COLUMNS, OBSERVATION_KEY,
                                             OBSERVATION_ORDER),
        HOURLY_TABLE: create_table_cql(keyspace, HOURLY_TABLE, HOURLY_COLUMNS, HOURLY_KEY, HOURLY_ORDER),
    }


def observations_insert(keyspace: str = KEYSPACE) -> str:
    return insert_cql(keyspace, OBSERVATIONS_TABLE, OBSERVATION_COLUMNS)


def hourly_insert(keyspace: str = KEYSPACE) -> str:
    return insert_cql(keyspace, HOURLY_TABLE, HOURLY_COLUMNS)
