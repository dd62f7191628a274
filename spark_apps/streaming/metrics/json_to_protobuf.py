"""Streaming job A: validate JSON server metrics and republish them as Protobuf.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/json_to_protobuf.py \\
        --bootstrap broker:9092 --checkpoint s3://lake/checkpoints/metrics/json_to_protobuf

Reads ``--source-topic`` (JSON, see :func:`transforms.json_to_kafka_records`), writes each valid
event as a ``dataplatform.metrics.Metric`` to ``--sink-topic`` (key = host) and each bad
one as a JSON dead letter (reason, source topic/partition/offset, raw bytes) to
``--dead-letter-topic``. Bad data never fails the query; only infrastructure errors do
(an unreachable broker, a lost checkpoint), and then the query must fail loudly.

One pass per micro-batch: Spark's Kafka source (:mod:`spark_apps.streaming.kafka_io`) reads
the batch, :func:`transforms.json_to_kafka_records` checks and encodes every record in one
``mapInArrow`` and gives each a ``topic`` column (sink or dead-letter topic), and Spark's
Kafka sink publishes both, routed by that column. So both outputs of a micro-batch come
from one planned offset range and one checkpoint, and the batch is read from Kafka once
(no foreachBatch, no persist, no second write job).

Delivery semantics. Spark's Kafka sink is not transactional, so the guarantee is
*at-least-once*: if the driver dies after the batch's records are acknowledged but before
the batch is committed in the checkpoint, the restarted query replays exactly the same
offset range (the offsets are in the checkpoint's offset log) and publishes the same
records again. Every Protobuf record carries its source topic/partition/offset, and the
consumer (job B) deduplicates on them, which makes the end results exactly-once. Dead letters can be duplicated the same
way; they are for people, keyed by source coordinates so duplicates are obvious.
"""
from __future__ import annotations

import argparse

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_stream
from spark_apps.streaming.metrics.transforms import json_to_kafka_records
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)

QUERY_NAME = "metrics_json_to_protobuf"
# Rows per micro-batch when the caller does not say: large enough that the fixed cost of
# a batch (planning, task launch, checkpoint commit: ~0.3-1 s here) is small against the
# rows, small enough to keep a batch to a few seconds after a long outage.
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 500_000


def start_query(
    spark: SparkSession,
    bootstrap: str,
    checkpoint: str,
    source_topic: str = "metric-message",
    sink_topic: str = "metric-protobuf",
    dead_letter_topic: str = "metric-dead-letter",
    trigger_seconds: float = 10,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> StreamingQuery:
    """Start job A's query (``startingOffsets`` only applies to a new checkpoint)."""
    source = read_kafka_stream(
        spark, bootstrap, source_topic, kafka_options, startingOffsets=starting_offsets,
        maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER)
    records = json_to_kafka_records(source, sink_topic, dead_letter_topic)
    writer = write_kafka_stream(records, bootstrap, checkpoint, None, kafka_options).queryName(QUERY_NAME)
    return writer.trigger(**trigger_options(available_now, trigger_seconds)).start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="JSON server metrics -> Protobuf topic + dead letters")
    add_streaming_arguments(parser, trigger_seconds=10)
    parser.add_argument("--source-topic", default="metric-message")
    parser.add_argument("--sink-topic", default="metric-protobuf")
    parser.add_argument("--dead-letter-topic", default="metric-dead-letter")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(QUERY_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    query = start_query(
        spark, args.bootstrap, args.checkpoint, args.source_topic, args.sink_topic,
        args.dead_letter_topic, args.trigger_seconds, args.available_now,
        args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, [query], args.status_uri)
    else:
        query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
