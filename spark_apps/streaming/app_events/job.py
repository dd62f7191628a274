"""App-events streaming job: short-video engagement events on Kafka -> per-category windowed stats in
MySQL, the clean events as Parquet in the lake, bad records to a dead-letter topic.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/app_events/job.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/streaming/_checkpoints/app_events \\
        --status-uri s3://lake/streaming/_status/app_events

Three queries over ``--source-topic`` (``app-events``; Spark's Kafka source, one checkpoint each
under ``--checkpoint``), each checking every record with :func:`transforms.checked` (Spark SQL:
``try_parse_json`` and checks over the JVM's values, no Python per record):

* ``app_events_clean`` (stateless): the valid events to ``<lake>/app_events/clean/`` by Spark's
  Parquet file sink, partitioned by ``event_date``. Exactly once: the sink commits each batch's
  files in its ``_spark_metadata`` log, together with the checkpoint's offsets; a batch replayed
  after a crash writes its files again under the same batch id and readers (Spark) see one copy.
* ``app_events_dead_letters`` (stateless): the invalid records, with reason and source
  topic/partition/offset, published to ``--dead-letter-topic`` by Spark's Kafka sink from a
  foreachBatch (:func:`kafka_io.write_kafka_batch`), then their count per kind of reason upserted
  into MySQL ``app_event_dead_letter_counts`` keyed by (stream, batch, kind). At-least-once like
  every non-transactional Kafka sink: a batch replayed after a crash sends its letters again
  (keyed by their source coordinates, so duplicates are obvious); the counts are not doubled.
* ``app_events_category_stats`` (stateful): views, likes, average and total watch time and distinct
  users (``approx_count_distinct``) per category and event-time window (``--window``, 1 minute)
  with a watermark (``--watermark``), output mode *update*: each micro-batch upserts the windows it
  changed, with their totals so far, into MySQL ``app_event_category_stats`` keyed by (category,
  window start) - a later update, or a replay, replaces the row, never adds to it.

Why three queries reading the topic three times rather than one: a query has one sink, the file
sink's exactly-once needs the query to be a file-sink query, and a foreachBatch sees a static
frame without Spark's event-time state. The job creates its MySQL tables at start (tables.DDL).
A failure of any query (MySQL or the broker unreachable) ends the job non-zero; the supervisor
(Airflow task retries) resubmits it and it resumes from its checkpoints.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, upsert_values
from spark_apps.common.session import get_spark
from spark_apps.streaming.app_events import tables, transforms
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_batch
from spark_apps.streaming.metrics.protobuf_to_lake_and_mysql import stream_id_of
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)

APP_NAME = "app_events_streaming"
CLEAN_QUERY = "app_events_clean"
DEAD_LETTERS_QUERY = "app_events_dead_letters"
STATS_QUERY = "app_events_category_stats"
QUERIES = (CLEAN_QUERY, DEAD_LETTERS_QUERY, STATS_QUERY)
SOURCE_TOPIC = "app-events"
DEAD_LETTER_TOPIC = "app-events-dead-letter"
DEFAULT_TRIGGER_SECONDS = 5.0
# Records per micro-batch when the caller does not say: bounds a batch after an outage.
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 200_000


def clean_uri(lake_uri: str) -> str:
    return lake.join(lake_uri, tables.CLEAN_DIR)


def ensure_tables(db: ResultsDb) -> None:
    """The job's MySQL tables (CREATE TABLE IF NOT EXISTS: a restart changes nothing)."""
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in tables.DDL:
                cur.execute(statement)
    finally:
        conn.close()


def write_stats(batch: DataFrame, db: ResultsDb | None) -> int:
    """foreachBatch of ``app_events_category_stats`` over :func:`transforms.category_stats` rows
    (the windows the micro-batch changed): upserted into MySQL. A batch holds at most categories x
    open windows rows, so they are collected and written from the driver in one statement batch.
    Returns the number of windows written."""
    rows = [tuple(row) for row in transforms.mysql_stats_values(batch).collect()]
    if db is not None and rows:
        upsert_values(db, tables.STATS_TABLE, tables.STATS_SCHEMA, list(tables.STATS_KEYS), rows)
    return len(rows)


def write_dead_letters(batch: DataFrame, batch_id: int, db: ResultsDb | None, stream_id: str,
                       publish_dead_letters=None) -> dict[str, int]:
    """foreachBatch of ``app_events_dead_letters`` over :func:`transforms.checked` rows: the invalid
    ones handed as a (key, value) frame to ``publish_dead_letters`` (None: not published), which must
    raise unless all were delivered, then counted per kind of reason into MySQL. Returns the counts."""
    batch = batch.where(F.col("reason").isNotNull()).persist()
    try:
        counts = {row["reason_kind"]: int(row["count"]) for row in transforms.reason_counts(batch).collect()}
        if counts and publish_dead_letters is not None:
            publish_dead_letters(transforms.dead_letters(batch))
        if counts and db is not None:
            upsert_values(db, tables.DEAD_LETTER_COUNTS_TABLE, tables.DEAD_LETTER_COUNTS_SCHEMA,
                          list(tables.DEAD_LETTER_COUNTS_KEYS),
                          [(stream_id, batch_id, kind, n) for kind, n in sorted(counts.items())])
        return counts
    finally:
        batch.unpersist()


def _source(spark, bootstrap, topic, kafka_options, starting_offsets, max_offsets_per_trigger) -> DataFrame:
    return read_kafka_stream(spark, bootstrap, topic, kafka_options, startingOffsets=starting_offsets,
                             maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER)


def start_queries(
    spark: SparkSession,
    bootstrap: str,
    lake_uri: str,
    checkpoint: str,
    db: ResultsDb | None,
    source_topic: str = SOURCE_TOPIC,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    window: str = transforms.DEFAULT_WINDOW,
    watermark: str = transforms.DEFAULT_WATERMARK,
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> list[StreamingQuery]:
    """Start the three queries (checkpoints ``<checkpoint>/clean``, ``/dead_letters``, ``/stats``;
    ``startingOffsets`` only applies to a new checkpoint)."""
    trigger = trigger_options(available_now, trigger_seconds)
    if db is not None:
        ensure_tables(db)
    stream_ids: dict[str, str] = {}  # read at the first batch (Spark wrote the metadata at start)

    def dead_letter_batch(batch: DataFrame, batch_id: int) -> None:
        if "id" not in stream_ids:
            stream_ids["id"] = stream_id_of(spark, lake.join(checkpoint, "dead_letters"))
        write_dead_letters(batch, batch_id, db, stream_ids["id"],
                           lambda letters: write_kafka_batch(letters, bootstrap, dead_letter_topic, kafka_options))

    def stats_batch(batch: DataFrame, _batch_id: int) -> None:
        write_stats(batch, db)

    def source() -> DataFrame:
        return _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger)

    clean = (
        transforms.clean_events(transforms.checked(source())).writeStream.queryName(CLEAN_QUERY)
        .format("parquet").outputMode("append").partitionBy(tables.PARTITION_COLUMN)
        .option("path", clean_uri(lake_uri)).option("checkpointLocation", lake.join(checkpoint, "clean"))
        .trigger(**trigger).start()
    )
    dead_letters = (
        transforms.checked(source()).writeStream.queryName(DEAD_LETTERS_QUERY).outputMode("append")
        .foreachBatch(dead_letter_batch)
        .option("checkpointLocation", lake.join(checkpoint, "dead_letters")).trigger(**trigger).start()
    )
    stats = (
        transforms.category_stats(transforms.clean_events(transforms.checked(source())), window, watermark)
        .writeStream.queryName(STATS_QUERY).outputMode("update").foreachBatch(stats_batch)
        .option("checkpointLocation", lake.join(checkpoint, "stats")).trigger(**trigger).start()
    )
    return [clean, dead_letters, stats]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="App engagement events -> per-category window stats (MySQL) "
                                                 "and clean Parquet (lake)")
    add_streaming_arguments(parser, trigger_seconds=DEFAULT_TRIGGER_SECONDS)
    parser.add_argument("--lake", required=True, help="lake root URI; clean events go to <lake>/" + tables.CLEAN_DIR)
    parser.add_argument("--source-topic", default=SOURCE_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--window", default=transforms.DEFAULT_WINDOW, help="tumbling window length, e.g. '1 minute'")
    parser.add_argument("--watermark", default=transforms.DEFAULT_WATERMARK,
                        help="how late (event time) a view may arrive and still count in its window")
    parser.add_argument("--no-mysql", action="store_true", help="no MySQL writes (stats computed, not stored)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    queries = start_queries(
        spark, args.bootstrap, args.lake, args.checkpoint, None if args.no_mysql else ResultsDb.from_env(),
        args.source_topic, args.dead_letter_topic, args.window, args.watermark, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, queries, args.status_uri)
    else:
        for query in queries:
            query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
