"""The joined readings made ready for the analysis, and the profiles the charts show: plain
functions of DataFrames (the layout's columns, spark_apps/streaming/energy_weather/layout.py).

Energy is compared as **kWh per hour** (``kwh * 60 / interval_minutes``, the interval's mean power
in kW), not as kWh per reading: a 15-minute reading and a 30-minute one of the same household
draw differ by 2x in kWh at the same power, so means over readings of mixed intervals would
measure the meters' settings, not the use. With hourly readings it is the reading's kWh.

A reading's hour and weekday are those of the *start* of its interval (``reading_time`` is its
end): the reading ending at 10:00 is use between 9:00 and 10:00, hour 9. Times are UTC (the
layout's); the sessions of the platform run in UTC (common/session.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def interval_start(reading_time: Column, interval_minutes: Column) -> Column:
    return F.timestamp_seconds(F.unix_seconds(reading_time) - interval_minutes.cast("long") * 60)


def prepare(joined: DataFrame) -> DataFrame:
    """The analysable readings: kWh, temperature and interval known, interval > 0, kWh >= 0; with
    ``kwh_per_hour``, ``hour_of_day`` (0-23) and ``day_of_week`` (0 = Monday ... 6 = Sunday)."""
    start = interval_start(F.col("reading_time"), F.col("interval_minutes"))
    return (
        joined.where(F.col("kwh").isNotNull() & F.col("temperature_c").isNotNull() & F.col("reading_time").isNotNull()
                     & (F.col("interval_minutes") > 0) & (F.col("kwh") >= 0))
        .select(
            "household_id", "region", "reading_time", "event_date", "temperature_c",
            (F.col("kwh") * 60.0 / F.col("interval_minutes")).alias("kwh_per_hour"),
            F.hour(start).alias("hour_of_day"),
            # dayofweek is 1 = Sunday ... 7 = Saturday; shifted to ISO order from Monday.
            ((F.dayofweek(start) + 5) % 7).alias("day_of_week"),
        )
    )


def in_range(joined: DataFrame, from_date: date | None, to_date: date | None) -> DataFrame:
    """Rows of event dates ``from_date`` .. ``to_date`` (inclusive; None: unbounded). A filter on
    the partition column: only those ``event_date=`` folders are read."""
    if from_date is not None:
        joined = joined.where(F.col("event_date") >= F.lit(from_date))
    if to_date is not None:
        joined = joined.where(F.col("event_date") <= F.lit(to_date))
    return joined


@dataclass(frozen=True)
class ProfilePoint:
    key: int  # hour of day, or day of week (0 = Monday)
    mean_kwh_per_hour: float
    readings: int


def _profile(prepared: DataFrame, key: str) -> list[ProfilePoint]:
    rows = (prepared.groupBy(key)
            .agg(F.avg("kwh_per_hour").alias("mean"), F.count(F.lit(1)).alias("n"))
            .orderBy(key).collect())
    return [ProfilePoint(int(r[key]), float(r["mean"]), int(r["n"])) for r in rows]


def weekly_profile(prepared: DataFrame) -> list[ProfilePoint]:
    """Mean kWh per hour by day of week (only the days that have readings)."""
    return _profile(prepared, "day_of_week")


def daily_profile(prepared: DataFrame) -> list[ProfilePoint]:
    """Mean kWh per hour by hour of day (only the hours that have readings)."""
    return _profile(prepared, "hour_of_day")


def scatter_sample(prepared: DataFrame, total_rows: int, max_points: int, seed: int) -> list[tuple[float, float]]:
    """Up to ``max_points`` (temperature, kWh per hour) pairs, a uniform sample of the readings
    when there are more: a scatter of millions of points is one blot, and they would all travel
    to the driver. The fraction is raised a little so that the sample rarely falls short, and
    the limit cuts it back."""
    pairs = prepared.select("temperature_c", "kwh_per_hour")
    if total_rows > max_points:
        pairs = pairs.sample(fraction=min(1.0, 1.1 * max_points / total_rows), seed=seed).limit(max_points)
    return [(float(r[0]), float(r[1])) for r in pairs.collect()]


def means(prepared: DataFrame) -> tuple[float, float]:
    """(mean temperature, mean kWh per hour): the point the scatter's fitted line goes through."""
    row = prepared.agg(F.avg("temperature_c"), F.avg("kwh_per_hour")).first()
    return float(row[0]), float(row[1])
