"""Plain DataFrame functions of the app-events pipeline (batch and streaming alike), all in Spark SQL
(no Python UDF: every record is checked and parsed in the JVM).

Input is a Kafka-shaped frame as Spark's Kafka source gives it: ``key``, ``value`` (binary),
``topic``, ``partition``, ``offset``, ``timestamp``. Each value should be one event of
:mod:`.schema` (JSON).

:func:`checked` gives every record a ``reason`` (null for a valid event) and its typed fields,
from one parse into a VARIANT (``try_parse_json``: the exact JSON type of every field, present
or not). Reasons, the first failing check wins (a list names every field it failed on, comma
separated, in :data:`schema.FIELDS` order):

* ``empty_value`` - null or empty record;
* ``invalid_json`` - not UTF-8, or not parseable as JSON (truncated, duplicate keys);
* ``not_a_json_object`` - an array, number, string ...;
* ``missing_field:<names>`` - a field absent or JSON null;
* ``wrong_type:<names>`` - e.g. a string where a number belongs, a fraction for ``user_id``,
  ``"true"`` for ``liked``;
* ``out_of_range:<names>`` - ``user_id`` below 1, ``watch_time_s`` negative or above an hour,
  ``event_time_ms`` before 2000;
* ``unknown_category`` - a category not in :data:`schema.CATEGORIES`;
* ``event_time_in_future`` - stamped more than :data:`schema.MAX_FUTURE_S` after the record
  reached Kafka.

:func:`clean_events` gives the valid records as lake rows (:data:`CLEAN_COLUMNS`),
:func:`dead_letters` the others as dead letters (the other pipelines' format: key
``topic:partition:offset``, JSON value with the reason, those coordinates and the raw value as
text and base64), :func:`category_stats` the per-category event-time windows with a watermark.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_apps.streaming.app_events import schema

DEFAULT_WINDOW = "1 minute"
# How late (event time) a view may arrive and still count in its window: phones batch their
# events and send them when the app is next in the foreground, a minute or two later.
DEFAULT_WATERMARK = "2 minutes"
# approx_count_distinct's relative standard deviation (Spark's default): HyperLogLog++ with 2^9
# registers per window in the state store; small sets (tens of users) come out exact.
DISTINCT_USERS_RSD = 0.05

KAFKA_COLUMNS = ["raw", "topic", "partition", "offset", "kafka_timestamp"]
CLEAN_COLUMNS = [
    "event_id", "user_id", "video_id", "category", "watch_time_s", "liked", "event_time", "event_time_ms",
    "source_partition", "source_offset", "kafka_timestamp", "event_date",
]
STATS_COLUMNS = [
    "category", "window_start", "window_end", "views", "likes", "avg_watch_time_s", "total_watch_time_s",
    "distinct_users",
]

_SQL_TYPES = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}


def _json_path(name: str) -> str:
    return f"$['{name}']"


def _has_kind(type_: Column, kind: str) -> Column:
    """Whether a ``schema_of_variant`` type (``BIGINT``, ``DECIMAL(3,1)``, ``DOUBLE``, ``STRING``,
    ``BOOLEAN``, ``OBJECT<...>`` ...) is a JSON value of ``kind``."""
    if kind == "integer":
        return type_ == F.lit("BIGINT")
    if kind == "number":
        return type_.isin("BIGINT", "DOUBLE", "FLOAT") | type_.startswith("DECIMAL")
    if kind == "string":
        return type_ == F.lit("STRING")
    if kind == "boolean":
        return type_ == F.lit("BOOLEAN")
    raise ValueError(kind)


def _names_where(conditions: list[tuple[str, Column]]) -> Column:
    """The names whose condition holds, in order (an array, maybe empty)."""
    return F.filter(F.array(*[F.when(F.coalesce(c, F.lit(False)), F.lit(n)) for n, c in conditions]),
                    lambda name: name.isNotNull())


def checked(kafka_df: DataFrame) -> DataFrame:
    """Kafka records with ``reason`` (null: a valid event), the typed fields (one column per
    field of :data:`schema.FIELDS`, null where the record has no such valid value) and the Kafka
    columns (``raw`` = value, topic, partition, offset, ``kafka_timestamp``)."""
    text = F.col("value").cast("string")
    parsed = kafka_df.select(
        F.col("value").alias("raw"), "topic",
        F.col("partition").cast("int").alias("partition"), F.col("offset").cast("long").alias("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.is_valid_utf8(text).alias("utf8"),
        F.try_parse_json(text).alias("variant"),
    )
    v = F.col("variant")
    # One projection of the JSON types and the typed values; the reason is built from them next.
    typed = parsed.select(
        *KAFKA_COLUMNS, "utf8",
        v.isNull().alias("invalid_json"),
        F.coalesce(F.schema_of_variant(v).startswith("OBJECT"), F.lit(False)).alias("is_object"),
        *[F.schema_of_variant(F.variant_get(v, _json_path(f.name), "variant")).alias(f"t_{f.name}")
          for f in schema.FIELDS],
        *[F.try_variant_get(v, _json_path(f.name), _SQL_TYPES[f.kind]).alias(f.name) for f in schema.FIELDS],
    )

    def missing(f: schema.Field) -> Column:
        t = F.col(f"t_{f.name}")
        return t.isNull() | (t == F.lit("VOID"))

    def wrong(f: schema.Field) -> Column:
        return ~missing(f) & ~_has_kind(F.col(f"t_{f.name}"), f.kind)

    def out_of_range(f: schema.Field) -> Column:
        value = F.col(f.name).cast("double")
        low = value < F.lit(float(f.low)) if f.low is not None else F.lit(False)
        high = value > F.lit(float(f.high)) if f.high is not None else F.lit(False)
        return ~missing(f) & ~wrong(f) & (low | high)

    lists = [
        ("missing_field:", _names_where([(f.name, missing(f)) for f in schema.FIELDS])),
        ("wrong_type:", _names_where([(f.name, wrong(f)) for f in schema.FIELDS])),
        ("out_of_range:", _names_where([(f.name, out_of_range(f)) for f in schema.FIELDS if f.low is not None
                                        or f.high is not None])),
    ]
    problems = typed.select(
        *KAFKA_COLUMNS, *schema.FIELD_NAMES, "utf8", "invalid_json", "is_object",
        *[column.alias(prefix.rstrip(":")) for prefix, column in lists],
    )
    raw = F.col("raw")
    reason = (
        F.when(raw.isNull() | (F.length(raw) == 0), F.lit("empty_value"))
        .when(~F.col("utf8") | F.col("invalid_json"), F.lit("invalid_json"))
        .when(~F.col("is_object"), F.lit("not_a_json_object"))
    )
    for prefix, _ in lists:
        name = prefix.rstrip(":")
        reason = reason.when(F.size(F.col(name)) > 0, F.concat(F.lit(prefix), F.array_join(F.col(name), ",")))
    future_limit_ms = F.unix_millis(F.col("kafka_timestamp")) + F.lit(schema.MAX_FUTURE_S * 1000)
    reason = (reason
              .when(~F.col("category").isin(*schema.CATEGORIES), F.lit("unknown_category"))
              .when(F.col("event_time_ms") > future_limit_ms, F.lit("event_time_in_future")))
    return problems.select(reason.alias("reason"), *schema.FIELD_NAMES, *KAFKA_COLUMNS)


def clean_events(checked_df: DataFrame) -> DataFrame:
    """The valid records of :func:`checked` as lake rows (:data:`CLEAN_COLUMNS`): the event's
    fields, ``event_time`` as a timestamp (for windows), its UTC date ``event_date`` (the lake's
    partition; the session time zone is UTC: spark_apps/common/session.py) and the source
    coordinates, so every lake row names the Kafka record it came from."""
    event_time = F.timestamp_millis(F.col("event_time_ms"))
    return checked_df.where(F.col("reason").isNull()).select(
        "event_id", "user_id", "video_id", "category", "watch_time_s", "liked",
        event_time.alias("event_time"), "event_time_ms",
        F.col("partition").alias("source_partition"), F.col("offset").alias("source_offset"),
        "kafka_timestamp", F.to_date(event_time).alias("event_date"),
    )


def dead_letters(checked_df: DataFrame) -> DataFrame:
    """The invalid records of :func:`checked` as Kafka records (``key``, ``value``) for the
    dead-letter topic, in the other pipelines' format (spark_apps/streaming/weather/transforms.py)."""
    text = F.col("raw").cast("string")
    body = F.struct(
        F.col("reason").alias("reason"), F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"), F.col("offset").alias("source_offset"),
        F.when(F.col("raw").isNotNull() & F.is_valid_utf8(text), text).alias("raw_value_text"),
        # Spark's base64 breaks its output into MIME lines of 76 characters (CRLF) by default
        # (spark.sql.chunkBase64String.enabled): one unbroken string is what JSON readers expect.
        F.regexp_replace(F.base64(F.col("raw")), "\r\n", "").alias("raw_value_base64"),
    )
    return checked_df.where(F.col("reason").isNotNull()).select(
        F.concat_ws(":", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string"))
        .cast("binary").alias("key"),
        F.to_json(body).cast("binary").alias("value"),
    )


def reason_counts(checked_df: DataFrame) -> DataFrame:
    """Dead letters per kind of reason (the part before ``:``, a bounded set): ``reason_kind``, ``count``."""
    return (checked_df.where(F.col("reason").isNotNull())
            .groupBy(F.substring_index("reason", ":", 1).alias("reason_kind")).count())


def category_stats(clean: DataFrame, window: str = DEFAULT_WINDOW, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """Per category and event-time tumbling ``window``: views, likes, average and total watch time,
    distinct users (``approx_count_distinct``) - :data:`STATS_COLUMNS`.

    On a stream the windows are bounded by a watermark on ``event_time``: a view more than
    ``watermark`` older than the newest one seen is late and left out of the stats (it still
    reaches the lake, which another query writes); a window's state is dropped once the
    watermark passes its end. With the update output mode each micro-batch emits the windows it
    changed with their totals so far (absolute values: an upsert, so a replay changes nothing)."""
    aggregated = (clean.withWatermark("event_time", watermark)
                  .groupBy("category", F.window("event_time", window).alias("window")).agg(
                      F.count(F.lit(1)).alias("views"),
                      F.sum(F.col("liked").cast("long")).alias("likes"),
                      F.avg("watch_time_s").alias("avg_watch_time_s"),
                      F.sum("watch_time_s").alias("total_watch_time_s"),
                      F.approx_count_distinct("user_id", DISTINCT_USERS_RSD).alias("distinct_users")))
    return aggregated.select(
        "category", F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
        "views", "likes", "avg_watch_time_s", "total_watch_time_s", "distinct_users",
    )


def mysql_stats_values(stats: DataFrame) -> DataFrame:
    """Stats rows for MySQL (window bounds as UTC wall-clock DATETIMEs), in ``tables.STATS_SCHEMA`` order."""
    return stats.select(
        "category", F.col("window_start").cast("timestamp_ntz").alias("window_start"),
        F.col("window_end").cast("timestamp_ntz").alias("window_end"),
        F.col("views").cast("long").alias("views"), F.col("likes").cast("long").alias("likes"),
        "avg_watch_time_s", "total_watch_time_s", F.col("distinct_users").cast("long").alias("distinct_users"),
    )
