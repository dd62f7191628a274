"""Versions of the per-minute metrics aggregation, for Kappa-style reprocessing.

Each version is one definition of the table's columns and how they are computed from the
valid, deduplicated metrics (:func:`transforms.decode_protobuf` + ``deduplicate_by_source``),
per (minute of event time, host, metric name). Version 1 is what job B keeps live in
``metric_minute_aggregates`` (count, sum, min, max, avg: additive, so job B adds each
micro-batch's totals). Version 2 adds ``p95`` (the exact 95th percentile of the minute's values),
which cannot be added up batch by batch: the replay (:mod:`.replay`) computes it from the whole
retained log instead, into ``metric_minute_aggregates_v2``.

A new version is one more entry in :data:`VERSIONS` and in :mod:`.versions` (never a change to an old one: its table
exists and holds its results); the replay DAG (dags/streaming/metrics_kappa_replay.py) builds its
table from the log, compares it with the live one and switches the view
``metric_minute_aggregates_current`` to it.
"""
from __future__ import annotations

from typing import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.streaming.metrics.versions import CURRENT_VERSION, DESCRIPTIONS, VIEW, table_name  # noqa: F401

KEYS = ["window_start", "host", "metric_name"]
_KEY_FIELDS = [T.StructField("window_start", T.TimestampNTZType()), T.StructField("host", T.StringType()),
               T.StructField("metric_name", T.StringType())]
_V1: list[tuple[str, T.DataType, Callable[[], Column]]] = [
    ("count", T.LongType(), lambda: F.count(F.lit(1))),
    ("sum", T.DoubleType(), lambda: F.sum("value")),
    ("min", T.DoubleType(), lambda: F.min("value")),
    ("max", T.DoubleType(), lambda: F.max("value")),
    ("avg", T.DoubleType(), lambda: F.avg("value")),
]
VERSIONS: dict[int, list[tuple[str, T.DataType, Callable[[], Column]]]] = {
    1: _V1,
    # percentile (exact, linear interpolation between the closest ranks), not percentile_approx:
    # a replay reads every value of a minute anyway.
    2: [*_V1, ("p95", T.DoubleType(), lambda: F.percentile("value", 0.95))],
}
if set(VERSIONS) != set(DESCRIPTIONS):
    raise ImportError(f"versions.py lists {sorted(DESCRIPTIONS)} but minute_aggregates defines {sorted(VERSIONS)}")


def schema(version: int) -> T.StructType:
    table_name(version)
    return T.StructType([*_KEY_FIELDS, *[T.StructField(name, dtype) for name, dtype, _ in VERSIONS[version]]])


def minute_aggregates(metrics: DataFrame, version: int = CURRENT_VERSION) -> DataFrame:
    """Version ``version`` of the aggregation over valid metrics (host, metric_name, event_time, value)."""
    table_name(version)
    columns = VERSIONS[version]
    return (metrics.groupBy(F.date_trunc("minute", "event_time").cast("timestamp_ntz").alias("window_start"),
                            "host", "metric_name")
            .agg(*[make().alias(name) for name, _, make in columns])
            .select(*[F.col(f.name).cast(f.dataType) for f in schema(version).fields]))
