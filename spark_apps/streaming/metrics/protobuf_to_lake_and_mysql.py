"""Streaming job B: Protobuf server metrics -> CSV files in the lake + per-minute aggregates in MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/checkpoints/metrics/protobuf_to_lake

Two queries over ``--source-topic``, each with its own checkpoint under ``--checkpoint``:

* ``lake``: the topic is read and decoded once per micro-batch; the valid metrics,
  deduplicated on their JSON source coordinates, and the dead letters (records that do
  not decode as a valid ``Metric``) reach one foreachBatch (:func:`write_lake_batch`):

  - dead letters go as JSON to ``--dead-letter-topic`` (at-least-once, like every
    non-transactional Kafka sink);
  - metrics are written as CSV to ``<lake>/streaming/metrics_csv/batch_id=<id>/metric_name=<name>/``.
    A batch folder counts once it holds ``_SUCCESS`` (written by the output committer
    after all its files): readers (:func:`committed_csv_folders`) only read such folders,
    a replayed batch whose folder is complete is not written again, and an incomplete
    one (crash during the write) is overwritten. The checkpoint replays a batch with the
    same offsets and the same dedup state, so the folder's content is the batch's:
    exactly-once.
* ``aggregates``: the same deduplicated metrics in event-time 1-minute windows per host
  and metric (:func:`transforms.per_minute_aggregates`), output mode *update*, upserted
  into ``metric_minute_aggregates`` keyed by (window_start, host, metric_name) in
  foreachBatch. Update mode emits a window's complete current totals whenever it
  changes (not a delta), so an upsert is idempotent: a replayed batch (crash between
  the MySQL commit and the checkpoint commit) rewrites the same values, and a later
  event for an open window overwrites the row with the new totals. Append mode would
  hold every window back until the watermark passes its end — never, for the last
  windows of an availableNow run. Events older than the watermark are dropped by
  Spark (their window may already be final in MySQL). The changed windows of a batch
  are few (hosts x metrics x open minutes), so they are collected and upserted from
  the driver in one transaction.

Why deduplicate: job A is at-least-once and republishes a replayed batch; a republished
record has the same source coordinates and event time. The dedup state is keyed with
the event time and bounded by the watermark, so a duplicate arriving later than the
watermark would not be recognised — a replay republishes within seconds, far inside it.

Why two queries and not one: the aggregates need Spark's stateful window aggregation
(late-data handling, window state bounded by the watermark), and a query with a
streaming aggregation outputs only the aggregates. Everything else shares one query,
so the topic is read and decoded twice per micro-batch (was three times, with three
queries). The two checkpoints are independent: MySQL failing and restarting never
re-emits into the lake or the dead-letter topic.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, ensure_table, upsert_collected
from spark_apps.common.session import get_spark
from spark_apps.streaming.supervision import add_streaming_arguments, clear_stop_marker, run_until_stopped
from spark_apps.streaming.kafka import kafka_format, read_stream
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
BATCH_FOLDER_PREFIX = "batch_id="
COMMIT_MARKER = "_SUCCESS"  # written by Hadoop's output committer when a write job commits
APP_NAME = "metrics_protobuf_to_lake_and_mysql"
# Rows per micro-batch when the caller does not say (see json_to_protobuf).
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 500_000
# Columns of the lake query's rows that carry a dead letter (null on metric rows).
_DEAD_KEY, _DEAD_VALUE = "dead_letter_key", "dead_letter_value"


def csv_uri(lake_uri: str) -> str:
    return lake.join(lake_uri, CSV_SUBDIR)


def csv_batch_uri(csv_root: str, batch_id: int) -> str:
    """The folder of one micro-batch's CSV files."""
    return lake.join(csv_root, f"{BATCH_FOLDER_PREFIX}{int(batch_id)}")


def committed_csv_folders(spark: SparkSession, csv_root: str) -> list[str]:
    """URIs of the batch folders whose write committed (holding ``_SUCCESS``), by batch id."""
    markers = lake.glob(spark, lake.join(csv_root, f"{BATCH_FOLDER_PREFIX}*", COMMIT_MARKER))
    return sorted((marker.rsplit("/", 1)[0] for marker in markers), key=batch_id_of_folder)


def batch_id_of_folder(folder: str) -> int:
    """``.../batch_id=12`` -> 12."""
    name = folder.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith(BATCH_FOLDER_PREFIX):
        raise ValueError(f"not a batch folder: {folder}")
    return int(name[len(BATCH_FOLDER_PREFIX):])


def lake_rows(valid: DataFrame, dead_letters: DataFrame, watermark: str) -> DataFrame:
    """One frame for the lake query: deduplicated metrics (CSV columns, dead-letter columns
    null) and dead letters (``dead_letter_key``/``dead_letter_value`` as the Kafka record,
    CSV columns null). Dead letters bypass the dedup: they are not event-time data."""
    metrics = deduplicate_by_source(valid, watermark).select(*CSV_COLUMNS)
    records = dead_letter_records(dead_letters).select(
        F.col("key").alias(_DEAD_KEY), F.col("value").alias(_DEAD_VALUE))
    return metrics.unionByName(records, allowMissingColumns=True)


def write_lake_batch(batch: DataFrame, batch_id: int, csv_root: str, bootstrap: str,
                     dead_letter_topic: str) -> dict[str, int]:
    """foreachBatch of the lake query: dead letters to Kafka, metrics to the batch's CSV
    folder (skipped when a previous attempt of the batch committed it). Returns counts."""
    spark = batch.sparkSession
    is_dead = F.col(_DEAD_VALUE).isNotNull()
    batch = batch.persist()  # one evaluation of the stateful plan for both writes
    try:
        counts = {"metrics": 0, "dead_letters": 0}
        for dead, n in batch.groupBy(is_dead.alias("dead")).count().collect():
            counts["dead_letters" if dead else "metrics"] = n
        if counts["dead_letters"]:
            (batch.where(is_dead).select(F.col(_DEAD_KEY).alias("key"), F.col(_DEAD_VALUE).alias("value"))
             .write.format(kafka_format(spark))
             .option("kafka.bootstrap.servers", bootstrap).option("topic", dead_letter_topic)
             .mode("append").save())
        folder = csv_batch_uri(csv_root, batch_id)
        if counts["metrics"] and not lake.exists(spark, lake.join(folder, COMMIT_MARKER)):
            (batch.where(~is_dead).select(*CSV_COLUMNS)
             .write.mode("overwrite").option("header", "true").partitionBy("metric_name")
             .csv(folder))
        return counts
    finally:
        batch.unpersist()


_tables_ready: set[tuple] = set()


def upsert_aggregates(batch: DataFrame, db: ResultsDb) -> int:
    """Upsert a batch of changed windows from the driver, in one transaction."""
    # window_start as TIMESTAMP_NTZ: the UTC wall-clock time reaches MySQL DATETIME as is,
    # whatever the time zone of the Python process (TIMESTAMP rows become local datetimes).
    rows = batch.withColumn("window_start", F.col("window_start").cast("timestamp_ntz"))
    table_key = (db.host, db.port, db.database, AGGREGATES_TABLE)
    if table_key not in _tables_ready:
        ensure_table(db, AGGREGATES_TABLE, rows.schema, AGGREGATES_KEYS)
        _tables_ready.add(table_key)
    return upsert_collected(rows, db, AGGREGATES_TABLE, AGGREGATES_KEYS)


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
    """Start the lake and aggregates queries; returns them by name."""
    options = {
        "startingOffsets": starting_offsets,
        "maxOffsetsPerTrigger": max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER,
    }
    trigger = {"availableNow": True} if available_now else {"processingTime": f"{trigger_seconds} seconds"}

    def decoded():
        return from_protobuf(read_stream(spark, bootstrap, source_topic, **options))

    csv_root = csv_uri(lake_uri)
    valid, dead_letters = decoded()
    lake_query = (
        lake_rows(valid, dead_letters, watermark)
        .writeStream.queryName(f"{APP_NAME}_lake")
        .outputMode("append")
        .foreachBatch(lambda batch, batch_id: write_lake_batch(
            batch, batch_id, csv_root, bootstrap, dead_letter_topic))
        .option("checkpointLocation", lake.join(checkpoint, "lake"))
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
    return {"lake": lake_query, "aggregates": aggregates_query}


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
