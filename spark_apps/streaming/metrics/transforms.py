"""Plain DataFrame functions of the server-metrics pipeline (batch and streaming alike).

Input of the codecs is a Kafka-shaped frame as Spark's Kafka source gives it: ``value``
(binary) plus ``topic``, ``partition``, ``offset`` (and ``timestamp`` for job B). A bad
record never stops a query: it becomes a dead letter, with the reason and the exact Kafka
coordinates it was read from (:func:`codec.dead_letter_record`, one format for both jobs).

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
# Valid rows: the JSON record's coordinates (dead_letter_key null); dead letters: their own key.
DEDUP_KEYS = ["source_topic", "source_partition", "source_offset", "dead_letter_key"]
DECODED_COLUMNS = ["reason", *METRIC_COLUMNS, "ingest_time", "dead_letter_key", "dead_letter_value"]

# Spark schemas of the mapInArrow outputs: the codec's Arrow schemas, defined once there.
_ENCODED_JSON = from_arrow_schema(codec.ENCODED_JSON_SCHEMA)
_DECODED_PROTOBUF = from_arrow_schema(codec.DECODED_PROTOBUF_SCHEMA)


def kafka_columns(kafka_df: DataFrame, *more) -> DataFrame:
    """The Kafka columns the codecs read: value, topic, partition, offset (then ``more``)."""
    return kafka_df.select(
        "value", "topic", F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"), *more,
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
# spark-protobuf module, an external Maven artifact that the platform's pinned jars do not
# include (the registry here does not serve it). So encoding and decoding run in
# mapInArrow (spark_apps.streaming.metrics.codec) with the generated ``metric_pb2`` module
# (protobuf's upb C implementation), which ships in the job bundle like any other module.
# The wire format is the same, so a consumer with the jar can read our topic and vice versa.


def decode_protobuf(kafka_df: DataFrame) -> DataFrame:
    """Job B's decode, one ``mapInArrow`` (:func:`codec.metric_protobuf_batch`) over the
    Protobuf ``Metric`` records of a Kafka frame: one row per record with :data:`DECODED_COLUMNS`.

    A valid metric has ``reason`` null and its fields (:data:`METRIC_COLUMNS`); a bad record
    has its reason and its dead letter (``dead_letter_key``/``dead_letter_value``, the Kafka
    record to publish) and nulls elsewhere. ``ingest_time`` is the Protobuf record's Kafka
    timestamp (when job A wrote it), the clock of job B's deduplication.

    Protobuf parsing is lenient (proto3 fields have no presence; empty bytes are a valid
    empty message), so a decoded message is also checked (:func:`codec.check_metric_protobuf`):
    ``undecodable_protobuf:<error>`` when parsing fails, ``invalid_metric:<fields>`` when
    host, metric name, region or source topic is empty or the metric name is unknown, the
    value is not finite or the event time is out of range. Dead letters carry the
    coordinates of the Protobuf record (where the bad bytes are), not of the JSON source.
    """
    records = kafka_columns(kafka_df, F.unix_micros("timestamp").alias("ingest_time_us"))
    decoded = records.mapInArrow(codec.map_batches(codec.metric_protobuf_batch), _DECODED_PROTOBUF)
    return decoded.select(
        "reason", "host", "metric_name", "region", "event_time_ms",
        F.timestamp_millis("event_time_ms").alias("event_time"),
        "value", "source_topic", "source_partition", "source_offset",
        F.timestamp_micros("ingest_time_us").alias("ingest_time"),
        "dead_letter_key", "dead_letter_value",
    )


# --- Aggregates ---------------------------------------------------------------------


def deduplicate_by_source(decoded: DataFrame, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """Drop records republished by an at-least-once producer (job A after a replay): rows of
    :func:`decode_protobuf` with the same JSON source coordinates (:data:`DEDUP_KEYS`; a dead
    letter's key is its own Protobuf coordinates, so each passes once too).

    The clock is ``ingest_time`` (when the copy reached the Protobuf topic), not the event
    time, and a key is remembered for at least ``watermark`` of that clock after its first
    copy (``dropDuplicatesWithinWatermark``): the state stays bounded, dead letters (which
    have no event time) pass through the same operator, and an event is never dropped for
    being old - only a row whose ingest time is more than ``watermark`` behind the newest
    seen (a partition read that far behind the others) would be, as any watermark does. A static
    frame (tests, backfills) is deduplicated whole (Spark refuses the within-watermark form there).
    """
    if not decoded.isStreaming:
        return decoded.dropDuplicates(DEDUP_KEYS)
    return decoded.withWatermark("ingest_time", watermark).dropDuplicatesWithinWatermark(DEDUP_KEYS)


def server_totals(metrics: DataFrame) -> DataFrame:
    """Per server: total_sum of all metric values, count of events, average value."""
    return (
        metrics.groupBy(F.col("host").alias("server_name"))
        .agg(F.sum("value").alias("total_sum"), F.count(F.lit(1)).alias("count"),
             F.avg("value").alias("average"))
    )
