"""Where the energy x weather join writes in the lake, and the columns it writes: one definition for
the streaming join (spark_apps/streaming/energy_weather/job.py), which writes these datasets, and
for the analysis (spark_apps/energy_analysis/), which reads them. No Spark import here.

* ``energy/joined/``: one row per meter reading that had weather of its region inside the join's
  time range, Parquet partitioned by ``event_date`` (the reading's UTC date), exactly once through
  the job's checkpoint (the file sink's own commit log).
* ``energy/unmatched/``: readings with no weather inside the range, same partitioning, with the
  reason, so they are counted and kept, not lost.
"""
from __future__ import annotations

JOINED_DIR = "energy/joined"
UNMATCHED_DIR = "energy/unmatched"
PARTITION_COLUMN = "event_date"

# (name, Spark SQL type) of every joined row, in this order. Times are UTC.
JOINED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("household_id", "string"),
    ("region", "string"),
    ("reading_time", "timestamp"),   # end of the metering interval (the reading's event time)
    ("interval_minutes", "int"),
    ("kwh", "double"),               # energy used in the interval
    ("city_id", "bigint"),           # the weather city the region maps to
    ("weather_time", "timestamp"),   # observation time (OpenWeatherMap ``dt``) joined to the reading
    ("temperature_c", "double"),
    ("humidity_pct", "double"),
    (PARTITION_COLUMN, "date"),
)

# The unmatched readings: the reading's own columns, the reason, and the partition column.
UNMATCHED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("household_id", "string"),
    ("region", "string"),
    ("reading_time", "timestamp"),
    ("interval_minutes", "int"),
    ("kwh", "double"),
    ("reason", "string"),
    (PARTITION_COLUMN, "date"),
)


def ddl(columns: tuple[tuple[str, str], ...]) -> str:
    """The columns as a Spark DDL schema string (``spark.read.schema(ddl(JOINED_COLUMNS))``)."""
    return ", ".join(f"{name} {kind}" for name, kind in columns)
