"""Joined data in the layout's exact schema (JOINED_COLUMNS), written as the streaming join writes it."""
from __future__ import annotations

from datetime import date, datetime, timezone

from include.generators import energy_joined
from spark_apps.streaming.energy_weather import layout


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def joined_frame(spark, rows):
    return spark.createDataFrame(list(rows), layout.ddl(layout.JOINED_COLUMNS))


def write_joined(spark, lake_uri: str, rows, mode: str = "append") -> str:
    """Parquet partitioned by event_date under <lake>/energy/joined/, as the join's file sink."""
    uri = f"{lake_uri.rstrip('/')}/{layout.JOINED_DIR}"
    joined_frame(spark, rows).write.mode(mode).partitionBy(layout.PARTITION_COLUMN).parquet(uri)
    return uri


def generated(start: date = date(2026, 11, 2), days: int = 28, **kwargs):
    return list(energy_joined.rows(start, days, **kwargs))
