"""Plain DataFrame functions of the server-metrics pipeline (batch and streaming alike).

Input of the parsers is a Kafka-shaped frame: ``value`` (binary) plus ``topic``,
``partition``, ``offset``. Every parser returns two frames, valid rows and dead letters,
so a bad record never stops a query: it is routed, with the reason and the exact Kafka
coordinates it was read from, to a dead-letter topic.

Valid rows (:data:`METRIC_COLUMNS`): host, metric_name, region, event_time_ms,
event_time (UTC timestamp), value (double), source_topic, source_partition,
source_offset — the last three always name the original JSON record, also after the
Protobuf hop, so consumers can deduplicate records that job A republished on a replay.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from spark_apps.streaming.metrics import codec
from spark_apps.streaming.metrics.names import METRIC_NAMES  # noqa: F401  (one list for producer and jobs)
DEFAULT_WATERMARK = "2 minutes"
WINDOW_DURATION = "1 minute"

METRIC_COLUMNS = [
    "host", "metric_name", "region", "event_time_ms", "event_time", "value",
    "source_topic", "source_partition", "source_offset",
]
DEAD_LETTER_COLUMNS = ["reason", "source_topic", "source_partition", "source_offset", "raw_value"]
DEDUP_KEYS = ["source_topic", "source_partition", "source_offset", "event_time"]

# Spark schemas of the mapInArrow outputs: the codec's Arrow schemas, defined once there.
_CHECKED_JSON = from_arrow_schema(codec.CHECKED_JSON_SCHEMA)
_ENCODED_JSON = from_arrow_schema(codec.ENCODED_JSON_SCHEMA)
_DECODED_PROTOBUF = from_arrow_schema(codec.DECODED_PROTOBUF_SCHEMA)
_METRIC_PROTOBUF = from_arrow_schema(codec.METRIC_PROTOBUF_SCHEMA)


def kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """The Kafka columns the codecs read: value, topic, partition, offset."""
    return kafka_df.select(
        "value", "topic", F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
    )


def parse_metric_json(kafka_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid metrics, dead letters) of JSON metric events in a Kafka-shaped frame.

    Each record is checked by :func:`codec.check_metric_json` (in ``mapInArrow``, one
    Python call per Arrow batch); the reasons, first failing check wins:

    * ``empty_value`` — null or empty record value;
    * ``invalid_json`` — not parseable (truncated, not UTF-8 JSON, duplicate keys);
    * ``not_a_json_object`` — an array, number, string ...;
    * ``missing_field:<names>`` — absent or JSON null;
    * ``wrong_type:<names>`` — host/metricName/region not non-empty strings; timestamp
      neither a string of digits nor a JSON integer (epoch ms); value not a finite number;
    * ``unknown_metric_name:<name>``.

    Both frames come from the same checked frame; consuming both runs the check twice
    (job A uses :func:`json_to_kafka_records`, which needs one pass).
    """
    checked = kafka_columns(kafka_df).mapInArrow(codec.map_batches(codec.checked_json_batch), _CHECKED_JSON)
    valid = checked.where(F.col("reason").isNull()).select(
        "host", "metric_name", "region", "event_time_ms",
        F.timestamp_millis("event_time_ms").alias("event_time"),
        "value", "source_topic", "source_partition", "source_offset",
    )
    dead_letters = checked.where(F.col("reason").isNotNull()).select(*DEAD_LETTER_COLUMNS)
    return valid, dead_letters


def json_to_kafka_records(kafka_df: DataFrame, sink_topic: str, dead_letter_topic: str) -> DataFrame:
    """Job A in one pass: Kafka records (topic, key, value) for every JSON event.

    Valid events go to ``sink_topic`` as serialized ``Metric`` keyed by host; bad ones to
    ``dead_letter_topic`` as :func:`dead_letter_records` builds them (reason, source
    coordinates, raw bytes). One ``mapInArrow`` checks and encodes; one Kafka write,
    routed by the ``topic`` column, publishes both.
    """
    checked = kafka_columns(kafka_df).mapInArrow(codec.map_batches(codec.metric_json_batch), _ENCODED_JSON)
    valid = F.col("reason").isNull()
    return checked.select(
        F.when(valid, F.lit(sink_topic)).otherwise(F.lit(dead_letter_topic)).alias("topic"),
        F.when(valid, F.col("key")).otherwise(_dead_letter_key()).alias("key"),
        F.when(valid, F.col("value")).otherwise(_dead_letter_value()).alias("value"),
    )


def _dead_letter_key() -> Column:
    return F.concat_ws(":", "source_topic", "source_partition", "source_offset").cast("binary")


def _dead_letter_value() -> Column:
    body = F.struct(
        "reason", "source_topic", "source_partition", "source_offset",
        F.try_validate_utf8(F.col("raw_value").cast("string")).alias("raw_value_text"),
        F.base64("raw_value").alias("raw_value_base64"),
    )
    return F.to_json(body).cast("binary")


def dead_letter_records(dead_letters: DataFrame) -> DataFrame:
    """Kafka records (key, value) for dead letters: JSON with reason, source coordinates and
    the raw value both as text (when it is valid UTF-8) and as base64 (always exact)."""
    return dead_letters.select(_dead_letter_key().alias("key"), _dead_letter_value().alias("value"))


# --- Protobuf -----------------------------------------------------------------------
# pyspark.sql.protobuf.functions.to_protobuf/from_protobuf are wrappers around the
# spark-protobuf module, an external Maven artifact (like spark-sql-kafka) that is not in
# the pyspark distribution: without the jar they fail with a missing class. So encoding
# and decoding run in mapInArrow (spark_apps.streaming.metrics.codec) with the generated
# ``metric_pb2`` module (protobuf's upb C implementation), which ships in the job bundle
# like any other module. The wire format is the same, so a consumer with the jar can read
# our topic and vice versa.


def to_protobuf(metrics: DataFrame) -> DataFrame:
    """Kafka records (key = host, value = serialized ``dataplatform.metrics.Metric``) of valid metrics."""
    columns = metrics.select("host", "metric_name", "region", "event_time_ms", "value",
                             "source_topic", "source_partition", "source_offset")
    return columns.mapInArrow(codec.map_batches(codec.encode_metrics_batch), "key binary, value binary")


def from_protobuf(kafka_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid metrics, dead letters) of Protobuf ``Metric`` records in a Kafka-shaped frame.

    Protobuf parsing is lenient (proto3 fields have no presence; empty bytes are a valid
    empty message), so a decoded message is also checked (:func:`codec.check_metric_protobuf`):
    ``undecodable_protobuf:<error>`` when parsing fails, ``invalid_metric:<fields>`` when
    host, metric name, region or source topic is empty or the metric name is unknown, the
    value is not finite or the event time is out of range. Dead letters carry the
    coordinates of the Protobuf record (where the bad bytes are), not of the JSON source.
    """
    checked = kafka_columns(kafka_df).mapInArrow(
        codec.map_batches(codec.metric_protobuf_batch), _DECODED_PROTOBUF)
    valid = checked.where(F.col("reason").isNull()).select(
        "host", "metric_name", "region", "event_time_ms",
        F.timestamp_millis("event_time_ms").alias("event_time"),
        "value", "source_topic", "source_partition", "source_offset",
    )
    dead_letters = checked.where(F.col("reason").isNotNull()).select(
        "reason",
        F.col("kafka_topic").alias("source_topic"),
        F.col("kafka_partition").alias("source_partition"),
        F.col("kafka_offset").alias("source_offset"),
        "raw_value",
    )
    return valid, dead_letters


def from_protobuf_sending_dead_letters(kafka_df: DataFrame, write_dead_letters) -> DataFrame:
    """Valid metrics of Protobuf ``Metric`` records (as :func:`from_protobuf`'s first frame);
    the dead letters (same reasons, same record format as :func:`dead_letter_records`) are
    published by the decoding task itself through ``write_dead_letters`` (e.g. a
    ``kafka.sink.KafkaArrowBatchWriter``), before the task ends, so before its micro-batch
    can commit: at-least-once, like any Kafka sink. One read and one decode of the
    records, where :func:`from_protobuf`'s two frames, used together, read and decode twice.
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


def per_minute_aggregates(metrics: DataFrame, watermark: str | None = DEFAULT_WATERMARK) -> DataFrame:
    """Event-time 1-minute tumbling windows per host and metric.

    Columns: window_start, host, metric_name, count, sum, min, max, avg. ``watermark``
    bounds how late an event may arrive and still update its window (and how long a
    streaming query keeps window state); pass None when ``metrics`` already carries a
    watermark on ``event_time`` (e.g. from :func:`deduplicate_by_source`).
    """
    if watermark is not None:
        metrics = metrics.withWatermark("event_time", watermark)
    return (
        metrics.groupBy(F.window("event_time", WINDOW_DURATION), "host", "metric_name")
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.sum("value").alias("sum"),
            F.min("value").alias("min"),
            F.max("value").alias("max"),
            F.avg("value").alias("avg"),
        )
        .select(F.col("window.start").alias("window_start"), "host", "metric_name",
                "count", "sum", "min", "max", "avg")
    )


def server_totals(metrics: DataFrame) -> DataFrame:
    """Per server: total_sum of all metric values, count of events, average value."""
    return (
        metrics.groupBy(F.col("host").alias("server_name"))
        .agg(F.sum("value").alias("total_sum"), F.count(F.lit(1)).alias("count"),
             F.avg("value").alias("average"))
    )
