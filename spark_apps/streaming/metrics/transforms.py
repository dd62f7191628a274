"""Plain DataFrame functions of the server-metrics pipeline (batch and streaming alike).

Input of the codecs is a Kafka-shaped frame: ``value`` (binary) plus ``topic``,
``partition``, ``offset``. A bad record never stops a query: it becomes a dead letter,
with the reason and the exact Kafka coordinates it was read from
(:func:`codec.dead_letter_record`, one format for both jobs).

Valid rows (:data:`METRIC_COLUMNS`): host, metric_name, region, event_time_ms,
event_time (UTC timestamp), value (double), source_topic, source_partition,
source_offset - the last three always name the original JSON record, also after the
Protobuf hop, so consumers can deduplicate records that job A republished on a replay.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from spark_apps.streaming.metrics import codec
from spark_apps.streaming.metrics.names import METRIC_NAMES  # noqa: F401  (one list for producer and jobs)

DEFAULT_WATERMARK = "2 minutes"

METRIC_COLUMNS = [
    "host", "metric_name", "region", "event_time_ms", "event_time", "value",
    "source_topic", "source_partition", "source_offset",
]
DEDUP_KEYS = ["source_topic", "source_partition", "source_offset", "event_time"]

# Spark schemas of the mapInArrow outputs: the codec's Arrow schemas, defined once there.
_ENCODED_JSON = from_arrow_schema(codec.ENCODED_JSON_SCHEMA)
_METRIC_PROTOBUF = from_arrow_schema(codec.METRIC_PROTOBUF_SCHEMA)


def kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """The Kafka columns the codecs read: value, topic, partition, offset."""
    return kafka_df.select(
        "value", "topic", F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
    )


def json_to_kafka_records(kafka_df: DataFrame, sink_topic: str, dead_letter_topic: str) -> DataFrame:
    """Job A in one pass: Kafka records (topic, key, value) for every JSON event.

    Valid events go to ``sink_topic`` as serialized ``Metric`` keyed by host; bad ones to
    ``dead_letter_topic`` as dead letters. One ``mapInArrow``
    (:func:`codec.metric_json_batch`) checks and encodes; one Kafka write, routed by the
    ``topic`` column, publishes both. The reasons, first failing check wins
    (:func:`codec.check_metric_json`):

    * ``empty_value`` - null or empty record value;
    * ``invalid_json`` - not parseable (truncated, not UTF-8 JSON, duplicate keys);
    * ``not_a_json_object`` - an array, number, string ...;
    * ``missing_field:<names>`` - absent or JSON null;
    * ``wrong_type:<names>`` - host/metricName/region not non-empty strings; timestamp
      neither a string of digits nor a JSON integer (epoch ms); value not a finite number;
    * ``unknown_metric_name:<name>``.
    """
    checked = kafka_columns(kafka_df).mapInArrow(codec.map_batches(codec.metric_json_batch), _ENCODED_JSON)
    return checked.select(
        F.when(F.col("reason").isNull(), F.lit(sink_topic)).otherwise(F.lit(dead_letter_topic)).alias("topic"),
        "key", "value",
    )


# --- Protobuf -----------------------------------------------------------------------
# pyspark.sql.protobuf.functions.to_protobuf/from_protobuf are wrappers around the
# spark-protobuf module, an external Maven artifact (like spark-sql-kafka) that is not in
# the pyspark distribution: without the jar they fail with a missing class. So encoding
# and decoding run in mapInArrow (spark_apps.streaming.metrics.codec) with the generated
# ``metric_pb2`` module (protobuf's upb C implementation), which ships in the job bundle
# like any other module. The wire format is the same, so a consumer with the jar can read
# our topic and vice versa.


def from_protobuf_sending_dead_letters(kafka_df: DataFrame, write_dead_letters) -> DataFrame:
    """Valid metrics (:data:`METRIC_COLUMNS`) of Protobuf ``Metric`` records in a Kafka-shaped
    frame; the dead letters are published by the decoding task itself through
    ``write_dead_letters`` (e.g. a ``kafka.sink.KafkaArrowBatchWriter``), before the task
    ends, so before its micro-batch can commit: at-least-once, like any Kafka sink. As a
    second frame they would make Spark read and decode every batch twice.

    Protobuf parsing is lenient (proto3 fields have no presence; empty bytes are a valid
    empty message), so a decoded message is also checked (:func:`codec.check_metric_protobuf`):
    ``undecodable_protobuf:<error>`` when parsing fails, ``invalid_metric:<fields>`` when
    host, metric name, region or source topic is empty or the metric name is unknown, the
    value is not finite or the event time is out of range. Dead letters carry the
    coordinates of the Protobuf record (where the bad bytes are), not of the JSON source.
    """
    valid = kafka_columns(kafka_df).mapInArrow(
        codec.decode_protobuf_sending_dead_letters(write_dead_letters), _METRIC_PROTOBUF)
    return valid.select(
        "host", "metric_name", "region", "event_time_ms",
        F.timestamp_millis("event_time_ms").alias("event_time"),
        "value", "source_topic", "source_partition", "source_offset",
    )


# --- Aggregates ---------------------------------------------------------------------


def deduplicate_by_source(metrics: DataFrame, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """Drop records republished by an at-least-once producer (same source coordinates).

    ``event_time`` is part of the key (a republished record has the same one), which
    lets a streaming query forget a key once the watermark passes it: the state stays
    bounded. Also sets the event-time watermark for stateful operators downstream.
    """
    return metrics.withWatermark("event_time", watermark).dropDuplicates(DEDUP_KEYS)


def server_totals(metrics: DataFrame) -> DataFrame:
    """Per server: total_sum of all metric values, count of events, average value."""
    return (
        metrics.groupBy(F.col("host").alias("server_name"))
        .agg(F.sum("value").alias("total_sum"), F.count(F.lit(1)).alias("count"),
             F.avg("value").alias("average"))
    )
