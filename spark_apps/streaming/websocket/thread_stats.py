"""WebSocket thread-stats job: ``websocket-events`` (Avro) -> per-thread windowed statistics in
MySQL and as JSON on ``websocket-thread-stats``.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/websocket/thread_stats.py \\
        --bootstrap broker:9092 --checkpoint s3://lake/streaming/_checkpoints/websocket_thread_stats

Two queries over ``--source-topic`` (Spark's Kafka source, headers included):

* ``websocket_thread_stats``: ``from_avro`` with the writer schema the record's ``avro.schema``
  header names, resolved to the current reader schema (:func:`transforms.decode_events`); the
  repeats an at-least-once ingest republished dropped by (run_id, seq) within the watermark;
  per ``threadname`` and event-time window (``--window``, 1 minute; watermark ``--watermark``,
  2 minutes: a sample later than that is not counted, Spark's watermark rule): average, max and
  min process time and memory, total memory and count (:func:`transforms.thread_stats`). Update
  mode: every micro-batch upserts the windows it changed into MySQL ``websocket_thread_stats``,
  keyed by (window_start, threadname), with the window's full values from the state store (a
  replayed batch writes the same values), then publishes them as JSON to ``--stats-topic``,
  keyed ``threadname|window_start`` (a window updated twice is published twice: the last
  record of a key is its value, as in a compacted topic).
* ``websocket_undecodable``: records that are not Avro of a known version go to
  ``--dead-letter-topic`` with their reason and Kafka coordinates (stateless, Kafka sink).
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common.mysql import ResultsDb, upsert_values
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_batch, write_kafka_stream
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)
from spark_apps.streaming.websocket.transforms import (
    DEFAULT_WATERMARK,
    DEFAULT_WINDOW,
    decode_events,
    stats_records,
    thread_stats,
)

QUERY_NAME = "websocket_thread_stats"
UNDECODABLE_QUERY = "websocket_undecodable"
SOURCE_TOPIC = "websocket-events"
STATS_TOPIC = "websocket-thread-stats"
DEAD_LETTER_TOPIC = "websocket-dead-letter"
TABLE = "websocket_thread_stats"
KEYS = ["window_start", "threadname"]
SCHEMA = T.StructType([
    T.StructField("window_start", T.TimestampNTZType()), T.StructField("window_end", T.TimestampNTZType()),
    T.StructField("threadname", T.StringType()),
    T.StructField("avg_process_time_ms", T.DoubleType()), T.StructField("max_process_time_ms", T.LongType()),
    T.StructField("min_process_time_ms", T.LongType()),
    T.StructField("avg_memory_used_mb", T.DoubleType()), T.StructField("max_memory_used_mb", T.DoubleType()),
    T.StructField("min_memory_used_mb", T.DoubleType()), T.StructField("total_memory_used_mb", T.DoubleType()),
    T.StructField("count", T.LongType()),
])
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 200_000


def streaming_stats(decoded: DataFrame, window: str = DEFAULT_WINDOW, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """The stats query's frame: decoded events, repeats dropped, aggregated per thread and window."""
    events = decoded.where(F.col("decode_error").isNull())
    if decoded.isStreaming:
        events = events.withWatermark("event_time", watermark).dropDuplicatesWithinWatermark(["run_id", "seq"])
    else:
        events = events.dropDuplicates(["run_id", "seq"])
    return thread_stats(events, window)


def write_stats(batch: DataFrame, db: ResultsDb | None, publish=None) -> int:
    """foreachBatch of the stats query: the changed windows upserted into MySQL, then
    published (``publish(frame)``, None: not). Returns the windows written."""
    rows = [tuple(r[f.name] for f in SCHEMA.fields) for r in batch.collect()]  # a few rows per batch
    if not rows:
        return 0
    if db is not None:
        upsert_values(db, TABLE, SCHEMA, KEYS, rows)
    if publish is not None:
        spark = batch.sparkSession
        publish(stats_records(spark.createDataFrame(rows, SCHEMA)))
    return len(rows)


def start_queries(spark: SparkSession, bootstrap: str, checkpoint: str, db: ResultsDb | None,
                  source_topic: str = SOURCE_TOPIC, stats_topic: str = STATS_TOPIC,
                  dead_letter_topic: str = DEAD_LETTER_TOPIC, window: str = DEFAULT_WINDOW,
                  watermark: str = DEFAULT_WATERMARK, trigger_seconds: float = 5, available_now: bool = False,
                  max_offsets_per_trigger: int | None = None, starting_offsets: str = "earliest",
                  kafka_options: str | dict | None = None) -> list[StreamingQuery]:
    def decoded_source() -> DataFrame:
        return decode_events(read_kafka_stream(
            spark, bootstrap, source_topic, kafka_options, startingOffsets=starting_offsets, includeHeaders=True,
            maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER))

    def publish(frame: DataFrame) -> None:
        write_kafka_batch(frame, bootstrap, stats_topic, kafka_options)

    trigger = trigger_options(available_now, trigger_seconds)
    stats = (streaming_stats(decoded_source(), window, watermark).writeStream.queryName(QUERY_NAME)
             .outputMode("update").foreachBatch(lambda batch, _id: write_stats(batch, db, publish))
             .option("checkpointLocation", f"{checkpoint.rstrip('/')}/stats").trigger(**trigger).start())
    bad = decoded_source().where(F.col("decode_error").isNotNull())
    letters = bad.select(F.lit(None).cast("binary").alias("key"), F.to_json(F.struct(
        F.col("decode_error").alias("reason"), F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"), F.col("offset").alias("source_offset"),
        F.base64("value").alias("raw_base64"))).cast("binary").alias("value"))
    undecodable = (write_kafka_stream(letters, bootstrap, f"{checkpoint.rstrip('/')}/undecodable", dead_letter_topic,
                                      kafka_options).queryName(UNDECODABLE_QUERY).trigger(**trigger).start())
    return [stats, undecodable]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="websocket-events (Avro) -> per-thread stats in MySQL + JSON topic")
    add_streaming_arguments(parser, trigger_seconds=5)
    parser.add_argument("--source-topic", default=SOURCE_TOPIC)
    parser.add_argument("--stats-topic", default=STATS_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--window", default=DEFAULT_WINDOW)
    parser.add_argument("--watermark", default=DEFAULT_WATERMARK)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(QUERY_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    queries = start_queries(spark, args.bootstrap, args.checkpoint, ResultsDb.from_env(), args.source_topic,
                            args.stats_topic, args.dead_letter_topic, args.window, args.watermark,
                            args.trigger_seconds, args.available_now, args.max_offsets_per_trigger,
                            args.starting_offsets, args.kafka_options)
    if args.status_uri:
        run_until_stopped(spark, queries, args.status_uri)
    else:
        for query in queries:
            query.awaitTermination()


if __name__ == "__main__":
    main()
