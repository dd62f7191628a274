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
from pyspark.sql import types as T

from spark_apps.streaming.metrics.names import METRIC_NAMES  # noqa: E402  (one list for producer and jobs)
DEFAULT_WATERMARK = "2 minutes"
WINDOW_DURATION = "1 minute"

METRIC_COLUMNS = [
    "host", "metric_name", "region", "event_time_ms", "event_time", "value",
    "source_topic", "source_partition", "source_offset",
]
DEAD_LETTER_COLUMNS = ["reason", "source_topic", "source_partition", "source_offset", "raw_value"]
DEDUP_KEYS = ["source_topic", "source_partition", "source_offset", "event_time"]

# JSON field -> column name. The agents send camelCase metricName.
_STRING_FIELDS = {"host": "host", "metricName": "metric_name", "region": "region"}
_REQUIRED_FIELDS = ("host", "metricName", "region", "timestamp", "value")
# Variant type names of JSON numbers: integers come as BIGINT, decimals as DECIMAL(p,s),
# exponent notation as DOUBLE.
_NUMBER_TYPE = r"^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\))$"
_INTEGER_TYPE = r"^(TINYINT|SMALLINT|INT|BIGINT)$"
_EPOCH_MS_TEXT = r"^[0-9]{1,18}$"

PROTOBUF_SCHEMA = T.StructType([
    T.StructField("host", T.StringType()),
    T.StructField("metric_name", T.StringType()),
    T.StructField("region", T.StringType()),
    T.StructField("event_time_ms", T.LongType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("source_topic", T.StringType()),
    T.StructField("source_partition", T.IntegerType()),
    T.StructField("source_offset", T.LongType()),
    T.StructField("error", T.StringType()),
])


def _json_field(doc: Column, name: str) -> Column:
    return F.variant_get(doc, f"$.{name}", "variant")


def _json_type(doc: Column, name: str) -> Column:
    return F.schema_of_variant(_json_field(doc, name))


def _is_finite(value: Column) -> Column:
    return ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))


def parse_metric_json(kafka_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid metrics, dead letters) of JSON metric events in a Kafka-shaped frame.

    The JSON is parsed into a VARIANT (``try_parse_json``) rather than with
    ``from_json``: ``from_json`` coerces any token into a string field (``{"a":1}``
    becomes the host "{\\"a\\":1}") and any number-like into a double (``true`` -> 1.0),
    while the variant keeps the JSON type of every field, so wrong types are caught
    exactly. Checks, first failing one is the reason:

    * ``empty_value`` — null or empty record value;
    * ``invalid_json`` — not parseable (truncated, not UTF-8 JSON, duplicate keys);
    * ``not_a_json_object`` — an array, number, string ...;
    * ``missing_field:<names>`` — absent or JSON null;
    * ``wrong_type:<names>`` — host/metricName/region not non-empty strings; timestamp
      neither a string of digits nor a JSON integer (epoch ms); value not a finite number;
    * ``unknown_metric_name:<name>``.
    """
    doc = F.col("doc")
    missing = {name: _json_field(doc, name).isNull() | F.is_variant_null(_json_field(doc, name))
               for name in _REQUIRED_FIELDS}
    wrong = {
        **{name: (_json_type(doc, name) != "STRING")
               | (F.trim(F.variant_get(doc, f"$.{name}", "string")) == "")
           for name in _STRING_FIELDS},
        "timestamp": ~(
            ((_json_type(doc, "timestamp") == "STRING")
             & F.variant_get(doc, "$.timestamp", "string").rlike(_EPOCH_MS_TEXT))
            | _json_type(doc, "timestamp").rlike(_INTEGER_TYPE)
        ),
        "value": ~(_json_type(doc, "value").rlike(_NUMBER_TYPE)
                   & _is_finite(F.try_variant_get(doc, "$.value", "double"))),
    }

    def names_where(flags: dict[str, Column]) -> Column:
        return F.concat_ws(",", *[F.when(flag, F.lit(name)) for name, flag in flags.items()])

    metric_name = F.variant_get(doc, "$.metricName", "string")
    reason = (
        F.when(F.col("raw_value").isNull() | (F.length("raw_value") == 0), F.lit("empty_value"))
        .when(doc.isNull(), F.lit("invalid_json"))
        .when(~F.schema_of_variant(doc).startswith("OBJECT<"), F.lit("not_a_json_object"))
        .when(names_where(missing) != "", F.concat(F.lit("missing_field:"), names_where(missing)))
        .when(names_where(wrong) != "", F.concat(F.lit("wrong_type:"), names_where(wrong)))
        .when(~metric_name.isin(*METRIC_NAMES), F.concat(F.lit("unknown_metric_name:"), metric_name))
    )
    checked = kafka_df.select(
        F.col("value").alias("raw_value"),
        F.col("topic").alias("source_topic"),
        F.col("partition").cast("int").alias("source_partition"),
        F.col("offset").cast("long").alias("source_offset"),
        F.try_parse_json(F.col("value").cast("string")).alias("doc"),
    ).withColumn("reason", reason.otherwise(F.lit(None)))

    event_time_ms = F.variant_get(doc, "$.timestamp", "long")
    valid = checked.where(F.col("reason").isNull()).select(
        F.variant_get(doc, "$.host", "string").alias("host"),
        F.variant_get(doc, "$.metricName", "string").alias("metric_name"),
        F.variant_get(doc, "$.region", "string").alias("region"),
        event_time_ms.alias("event_time_ms"),
        F.timestamp_millis(event_time_ms).alias("event_time"),
        F.variant_get(doc, "$.value", "double").alias("value"),
        "source_topic", "source_partition", "source_offset",
    )
    dead_letters = checked.where(F.col("reason").isNotNull()).select(*DEAD_LETTER_COLUMNS)
    return valid, dead_letters


def dead_letter_records(dead_letters: DataFrame) -> DataFrame:
    """Kafka records (key, value) for dead letters: JSON with reason, source coordinates and
    the raw value both as text (when it is valid UTF-8) and as base64 (always exact)."""
    body = F.struct(
        "reason", "source_topic", "source_partition", "source_offset",
        F.try_validate_utf8(F.col("raw_value").cast("string")).alias("raw_value_text"),
        F.base64("raw_value").alias("raw_value_base64"),
    )
    return dead_letters.select(
        F.concat_ws(":", "source_topic", "source_partition", "source_offset").cast("binary").alias("key"),
        F.to_json(body).cast("binary").alias("value"),
    )


# --- Protobuf -----------------------------------------------------------------------
# pyspark.sql.protobuf.functions.to_protobuf/from_protobuf are wrappers around the
# spark-protobuf module, an external Maven artifact (like spark-sql-kafka) that is not in
# the pyspark distribution: without the jar they fail with a missing class. So encoding
# and decoding run in Arrow-backed pandas UDFs with the generated ``metric_pb2`` module
# (protobuf's upb C implementation), which ships in the job bundle like any other module.
# The wire format is the same, so a consumer with the jar can read our topic and vice versa.


def _encode_udf():
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(T.BinaryType())
    def encode_metrics(host, metric_name, region, event_time_ms, value,
                       source_topic, source_partition, source_offset):
        import pandas as pd

        from spark_apps.streaming.metrics.metric_pb2 import Metric

        encoded = [
            Metric(host=h, metric_name=m, region=r, event_time_ms=int(t), value=float(v),
                   source_topic=st, source_partition=int(sp), source_offset=int(so)).SerializeToString()
            for h, m, r, t, v, st, sp, so in zip(host, metric_name, region, event_time_ms, value,
                                                 source_topic, source_partition, source_offset)
        ]
        return pd.Series(encoded, dtype=object)

    return encode_metrics


def to_protobuf(metrics: DataFrame) -> DataFrame:
    """Kafka records (key = host, value = serialized ``dataplatform.metrics.Metric``) of valid metrics."""
    encode = _encode_udf()
    return metrics.select(
        F.col("host").cast("binary").alias("key"),
        encode("host", "metric_name", "region", "event_time_ms", "value",
               "source_topic", "source_partition", "source_offset").alias("value"),
    )


def _decode_udf():
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(PROTOBUF_SCHEMA)
    def decode_metrics(payloads):
        import pandas as pd
        from google.protobuf.message import DecodeError

        from spark_apps.streaming.metrics.metric_pb2 import Metric

        columns = {name: [] for name in PROTOBUF_SCHEMA.fieldNames()}

        def add(error, message=None):
            for name in columns:
                if name == "error":
                    columns[name].append(error)
                else:
                    columns[name].append(None if message is None else getattr(message, name))

        for payload in payloads:
            if payload is None:
                add("empty_value")
                continue
            message = Metric()
            try:
                message.ParseFromString(bytes(payload))
            except DecodeError as error:
                add(f"undecodable_protobuf:{error}")
                continue
            add(None, message)
        # Explicit nullable dtypes: a batch of only bad records must still give typed
        # (all-null) columns, not pandas' float NaN columns that Arrow cannot cast.
        dtypes = {"event_time_ms": "Int64", "source_partition": "Int32", "source_offset": "Int64",
                  "value": "Float64"}
        return pd.DataFrame({name: pd.Series(values, dtype=dtypes.get(name, object))
                             for name, values in columns.items()})

    return decode_metrics


def from_protobuf(kafka_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid metrics, dead letters) of Protobuf ``Metric`` records in a Kafka-shaped frame.

    Protobuf parsing is lenient (proto3 fields have no presence; empty bytes are a valid
    empty message), so a decoded message is also checked: ``undecodable_protobuf:<error>``
    when parsing fails, ``invalid_metric:<fields>`` when host, metric name, region or
    source topic is empty or the metric name is unknown. Dead letters carry the
    coordinates of the Protobuf record (where the bad bytes are), not of the JSON source.
    """
    decode = _decode_udf()
    decoded = kafka_df.select(
        F.col("value").alias("raw_value"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").cast("int").alias("kafka_partition"),
        F.col("offset").cast("long").alias("kafka_offset"),
        decode("value").alias("m"),
    )
    m = F.col("m")
    bad_fields = F.concat_ws(",", *[
        F.when(F.coalesce(m[name], F.lit("")) == "", F.lit(name))
        for name in ("host", "metric_name", "region", "source_topic")
    ], F.when((m["metric_name"] != "") & ~m["metric_name"].isin(*METRIC_NAMES), F.lit("metric_name")))
    reason = (
        F.when(m["error"].isNotNull(), m["error"])
        .when(bad_fields != "", F.concat(F.lit("invalid_metric:"), bad_fields))
        # NaN arrives as null (pandas' nullable Float64 turns NaN into NA); both are invalid.
        .when(m["value"].isNull() | ~_is_finite(m["value"]), F.lit("invalid_metric:value"))
    )
    checked = decoded.withColumn("reason", reason.otherwise(F.lit(None)))
    valid = checked.where(F.col("reason").isNull()).select(
        m["host"].alias("host"), m["metric_name"].alias("metric_name"), m["region"].alias("region"),
        m["event_time_ms"].alias("event_time_ms"),
        F.timestamp_millis(m["event_time_ms"]).alias("event_time"),
        m["value"].alias("value"),
        m["source_topic"].alias("source_topic"), m["source_partition"].alias("source_partition"),
        m["source_offset"].alias("source_offset"),
    )
    dead_letters = checked.where(F.col("reason").isNotNull()).select(
        "reason",
        F.col("kafka_topic").alias("source_topic"),
        F.col("kafka_partition").alias("source_partition"),
        F.col("kafka_offset").alias("source_offset"),
        "raw_value",
    )
    return valid, dead_letters


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
