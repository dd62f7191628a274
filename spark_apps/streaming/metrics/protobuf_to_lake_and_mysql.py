"""Streaming job B: Protobuf server metrics -> CSV files in the lake + per-minute aggregates in MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/checkpoints/metrics/protobuf_to_lake

Three queries over ``--source-topic``, each with its own checkpoint under ``--checkpoint``:

* ``csv``: valid metrics, deduplicated on their JSON source coordinates, appended as CSV
  to ``<lake>/streaming/metrics_csv/metric_name=<name>/``. The file sink records each
  batch's files in ``_spark_metadata`` together with the checkpoint, and readers of the
  directory (Spark) only see committed files: exactly-once.
* ``aggregates``: the same deduplicated metrics in event-time 1-minute windows per host
  and metric (:func:`transforms.per_minute_aggregates`), output mode *update*, upserted
  into ``metric_minute_aggregates`` keyed by (window_start, host, metric_name) in
  foreachBatch. Update mode emits a window's complete current totals whenever it
  changes (not a delta), so an upsert is idempotent: a replayed batch (crash between
  the MySQL commit and the checkpoint commit) rewrites the same values, and a later
  event for an open window overwrites the row with the new totals. Append mode would
  hold every window back until the watermark passes its end — never, for the last
  windows of an availableNow run. Events older than the watermark are dropped by
  Spark (their window may already be final in MySQL).
* ``dead_letters``: records that do not decode as a valid ``Metric``, as JSON to
  ``--dead-letter-topic`` (at-least-once, like every non-transactional Kafka sink).

Why deduplicate: job A is at-least-once and republishes a replayed batch; a republished
record has the same source coordinates and event time. The dedup state is keyed with
the event time and bounded by the watermark, so a duplicate arriving later than the
watermark would not be recognised — a replay republishes within seconds, far inside it.

Each query decodes the topic itself (three reads and decodes of the same range): that
keeps their checkpoints independent, so one sink failing and restarting never
re-emits into the others.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, upsert_rows
from spark_apps.common.session import get_spark
from spark_apps.streaming.supervision import add_streaming_arguments, clear_stop_marker, run_until_stopped
from spark_apps.streaming.kafka import read_stream, write_stream
from spark_apps.streaming.metrics.transforms import (
    DEFAULT_WATERMARK,
    dead_letter_records,
    deduplicate_by_source,
    from_protobuf,
    per_minute_aggregates,
)

AGGREGATES_TABLE = "metric_minute_aggregates"
AGGREGATES_KEYS = ["window_start", "host", "metric_name"]
CSV_SUBDIR = "streaming/metrics_csv"
CSV_COLUMNS = ["host", "region", "event_time_ms", "event_time", "value",
               "source_topic", "source_partition", "source_offset", "metric_name"]
APP_NAME = "metrics_protobuf_to_lake_and_mysql"
# Rows per micro-batch when the caller does not say (see json_to_protobuf).
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 500_000


def csv_uri(lake_uri: str) -> str:
    return lake.join(lake_uri, CSV_SUBDIR)


def upsert_aggregates(batch: DataFrame, db: ResultsDb) -> int:
    # window_start as TIMESTAMP_NTZ: the UTC wall-clock time reaches MySQL DATETIME as is,
    # whatever the time zone of the Python workers (TIMESTAMP rows become local datetimes).
    rows = batch.withColumn("window_start", F.col("window_start").cast("timestamp_ntz"))
    return upsert_rows(rows, db, AGGREGATES_TABLE, AGGREGATES_KEYS)


def start_queries(
    spark: SparkSession,
    bootstrap: str,
    lake_uri: str,
    checkpoint: str,
    db: ResultsDb,
    source_topic: str = "metric-protobuf",
    dead_letter_topic: str = "metric-dead-letter",
    watermark: str = DEFAULT_WATERMARK,
    trigger_seconds: int = 30,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
) -> dict[str, StreamingQuery]:
    """Start the csv, aggregates and dead_letters queries; returns them by name."""
    options = {
        "startingOffsets": starting_offsets,
        "maxOffsetsPerTrigger": max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER,
    }
    trigger = {"availableNow": True} if available_now else {"processingTime": f"{trigger_seconds} seconds"}

    def decoded():
        return from_protobuf(read_stream(spark, bootstrap, source_topic, **options))

    valid, _ = decoded()
    csv_query = (
        deduplicate_by_source(valid, watermark).select(*CSV_COLUMNS)
        .writeStream.queryName(f"{APP_NAME}_csv")
        .format("csv").option("header", "true")
        .partitionBy("metric_name")
        .option("path", csv_uri(lake_uri))
        .option("checkpointLocation", lake.join(checkpoint, "csv"))
        .outputMode("append")
        .trigger(**trigger)
        .start()
    )

    valid, _ = decoded()
    aggregates = per_minute_aggregates(deduplicate_by_source(valid, watermark), watermark=None)
    aggregates_query = (
        aggregates.writeStream.queryName(f"{APP_NAME}_aggregates")
        .outputMode("update")
        .foreachBatch(lambda batch, _batch_id: upsert_aggregates(batch, db))
        .option("checkpointLocation", lake.join(checkpoint, "aggregates"))
        .trigger(**trigger)
        .start()
    )

    _, dead_letters = decoded()
    dead_letter_query = (
        write_stream(dead_letter_records(dead_letters), bootstrap, dead_letter_topic,
                     lake.join(checkpoint, "dead_letters"))
        .queryName(f"{APP_NAME}_dead_letters")
        .trigger(**trigger)
        .start()
    )
    return {"csv": csv_query, "aggregates": aggregates_query, "dead_letters": dead_letter_query}


def await_queries(spark: SparkSession, queries: dict[str, StreamingQuery], available_now: bool) -> None:
    """Wait for all queries (availableNow) or until one fails (continuous), then fail loudly."""
    if available_now:
        for query in queries.values():
            query.awaitTermination()  # raises StreamingQueryException on failure
        return
    try:
        spark.streams.awaitAnyTermination()  # a continuous query only ends by failing
    finally:
        for query in queries.values():
            if query.isActive:
                query.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Protobuf server metrics -> lake CSV + MySQL aggregates")
    add_streaming_arguments(parser, trigger_seconds=30)  # --checkpoint: one folder per query below it
    parser.add_argument("--source-topic", default="metric-protobuf")
    parser.add_argument("--dead-letter-topic", default="metric-dead-letter")
    parser.add_argument("--lake", required=True, help="lake root URI; CSV goes to <lake>/" + CSV_SUBDIR)
    parser.add_argument("--watermark", default=DEFAULT_WATERMARK, help="how late an event may be, e.g. '2 minutes'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        clear_stop_marker(spark, args.status_uri)
    queries = start_queries(
        spark, args.bootstrap, args.lake, args.checkpoint, ResultsDb.from_env(),
        args.source_topic, args.dead_letter_topic, args.watermark, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets,
    )
    if args.status_uri:
        run_until_stopped(spark, list(queries.values()), args.status_uri)
    else:
        await_queries(spark, queries, args.available_now)


if __name__ == "__main__":
    main()
