"""Batch job: the turnstile warehouse model from the lake's window files, merged into MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/turnstile/warehouse.py --lake s3://lake \\
        [--service-date 2015-06-20]

Reads ``<lake>/streaming/turnstile_windows/service_date=<date>/*.csv.gz`` (what each micro-batch
added to each window, signed corrections included: spark_apps/streaming/turnstile/job.py), sums
them per station, line and window, and builds per service date:

* ``turnstile_station_day``: entries and exits per station and line;
* ``turnstile_busiest_stations``: the day's stations ranked by entries + exits (top ``--top``);
* ``turnstile_hourly_profile``: entries and exits per weekday and hour of day (window start) over
  all stations, for the weekday profile (average over dates in a query).

Each table is replaced for the service dates built (``replace_rows``: staged, then one
transaction), so rerunning a day replaces it and a late correction (a newer window file) updates
the day rather than appending to it. Without ``--service-date`` every date in the lake is rebuilt.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, replace_rows
from spark_apps.common.session import get_spark
from spark_apps.streaming.turnstile.job import windows_uri
from spark_apps.streaming.turnstile.transforms import SUMS

STATION_DAY_TABLE = "turnstile_station_day"
BUSIEST_TABLE = "turnstile_busiest_stations"
PROFILE_TABLE = "turnstile_hourly_profile"
DEFAULT_TOP = 10
FILE_SCHEMA = T.StructType([
    T.StructField("station", T.StringType()), T.StructField("line", T.StringType()),
    T.StructField("window_start", T.TimestampNTZType()), T.StructField("window_end", T.TimestampNTZType()),
    T.StructField("service_date", T.DateType()), T.StructField("division", T.StringType()),
    *[T.StructField(name, T.LongType()) for name in SUMS], T.StructField("batch_id", T.LongType()),
])


def read_windows(spark: SparkSession, lake_uri: str, service_date: str | None = None) -> DataFrame:
    """Window totals (station, line, window_start, service_date, entries, exits, ...): the files'
    rows summed per window."""
    root = windows_uri(lake_uri)
    pattern = lake.join(root, f"service_date={service_date or '*'}", "*.csv.gz")
    if not lake.glob(spark, pattern):
        return spark.createDataFrame([], FILE_SCHEMA).drop("batch_id")
    # FAILFAST: the files are ours; a row that does not fit is a bug to see.
    rows = spark.read.schema(FILE_SCHEMA).option("header", "true").option("mode", "FAILFAST").csv(pattern)
    return rows.groupBy("station", "line", "window_start").agg(
        F.max("window_end").alias("window_end"), F.max("service_date").alias("service_date"),
        F.max("division").alias("division"), *[F.sum(name).alias(name) for name in SUMS])


def station_day(windows: DataFrame) -> DataFrame:
    return windows.groupBy("service_date", "station", "line").agg(
        F.max("division").alias("division"), F.sum("entries").alias("entries"), F.sum("exits").alias("exits"),
        F.sum("intervals").alias("intervals"),
        (F.sum("entries_dropped") + F.sum("exits_dropped") + F.sum("gap_dropped")).alias("dropped"))


def busiest_stations(days: DataFrame, top: int = DEFAULT_TOP) -> DataFrame:
    rank = F.row_number().over(Window.partitionBy("service_date").orderBy(
        F.desc("traffic"), "station", "line"))
    ranked = days.withColumn("traffic", F.col("entries") + F.col("exits")).withColumn("rank", rank)
    return ranked.where(F.col("rank") <= top).select(
        "service_date", F.col("rank").cast("int").alias("rank"), "station", "line", "entries", "exits", "traffic")


def hourly_profile(windows: DataFrame) -> DataFrame:
    return windows.groupBy(
        "service_date", F.date_format("service_date", "EEEE").alias("weekday"),
        F.hour("window_start").alias("hour")).agg(
        F.sum("entries").alias("entries"), F.sum("exits").alias("exits"),
        F.countDistinct("station", "line").alias("stations"))


def run(spark: SparkSession, lake_uri: str, db: ResultsDb, service_date: str | None = None,
        top: int = DEFAULT_TOP) -> dict[str, int]:
    windows = read_windows(spark, lake_uri, service_date).persist()
    try:
        days = station_day(windows).persist()
        scope = ("service_date = %s", (service_date,)) if service_date else (None, ())
        written = {
            STATION_DAY_TABLE: replace_rows(days, db, STATION_DAY_TABLE, ["service_date", "station", "line"], *scope),
            BUSIEST_TABLE: replace_rows(busiest_stations(days, top), db, BUSIEST_TABLE, ["service_date", "rank"],
                                        *scope),
            PROFILE_TABLE: replace_rows(hourly_profile(windows), db, PROFILE_TABLE, ["service_date", "hour"], *scope),
        }
        days.unpersist()
        return written
    finally:
        windows.unpersist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Turnstile warehouse model (station-day, busiest, hourly profile)")
    parser.add_argument("--lake", required=True, help="lake root URI")
    parser.add_argument("--service-date", help="YYYY-MM-DD; default: every service date in the lake")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP)
    args = parser.parse_args(argv)
    for table, rows in run(get_spark("turnstile_warehouse"), args.lake, ResultsDb.from_env(), args.service_date,
                           args.top).items():
        print(f"{table}: {rows} rows")


if __name__ == "__main__":
    main()
