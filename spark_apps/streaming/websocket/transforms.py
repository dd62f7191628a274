"""Plain DataFrame functions of the WebSocket pipeline (streaming and static frames alike).

Ingest (:mod:`.ingest`): the WebSocket messages (:mod:`.source` rows: idx, received_at,
payload) are checked in Spark SQL (:func:`parse_messages`); valid ones become Avro records of
``websocket-events`` (:func:`event_records`, ``to_avro`` with the repository's schema and its
name in the ``avro.schema`` header), bad ones dead letters (:func:`dead_letter_records`), and
the server's sequence numbers are checked for gaps (:func:`seq_summary`, :func:`count_gaps`).

Thread statistics (:mod:`.thread_stats`): ``from_avro`` with the writer schema each record's
header names, resolved to the reader's schema (:func:`decode_events`), then per ``threadname``
and event-time window: average, maximum and minimum process time and memory, total memory and
count (:func:`thread_stats`), the seed's output line per thread.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

from spark_apps.streaming.websocket import schema

EVENT_COLUMNS = ["threadname", "process_time_ms", "memory_used_mb", "event_time", "seq", "run_id", "received_at"]
_FIELDS = ["threadname", "process_time_ms", "memory_used_mb", "event_time", "seq", "run_id"]
# How each JSON field is read (try_variant_get: null when absent or not convertible).
_TYPES = {"threadname": "string", "process_time_ms": "bigint", "memory_used_mb": "double",
          "event_time": "timestamp", "seq": "bigint", "run_id": "string"}
DEFAULT_WINDOW = "1 minute"
DEFAULT_WATERMARK = "2 minutes"


def _names_where(conditions: dict[str, Column]) -> Column:
    """``a,b`` of the names whose condition holds (null when none does)."""
    parts = [F.when(cond, F.lit(name)) for name, cond in conditions.items()]
    joined = F.concat_ws(",", *parts)
    return F.when(joined != "", joined)


def parse_messages(messages: DataFrame) -> DataFrame:
    """One row per message: ``reason`` null and the typed fields for a valid one, else the
    first failing check and the raw ``payload``:

    * ``empty_message`` - no text;
    * ``invalid_json`` - not parseable JSON;
    * ``not_a_json_object`` - an array, a number, ...;
    * ``missing_field:<names>`` - absent or JSON null;
    * ``wrong_type:<names>`` - present but not convertible (threadname/run_id not non-empty
      text; process_time_ms/seq not integers; memory_used_mb not a number; event_time not an
      ISO-8601 time);
    * ``out_of_range:<names>`` - process_time_ms or memory_used_mb negative, seq below 1.
    """
    doc = F.try_parse_json("payload")
    raw = {name: F.variant_get(doc, f"$.{name}", "variant") for name in _FIELDS}
    typed = {name: F.try_variant_get(doc, f"$.{name}", _TYPES[name]) for name in _FIELDS}
    missing = {name: raw[name].isNull() | F.is_variant_null(raw[name]) for name in _FIELDS}
    wrong = {name: typed[name].isNull() for name in _FIELDS}
    for name in ("threadname", "run_id"):
        wrong[name] = wrong[name] | (F.trim(typed[name]) == "") | (F.schema_of_variant(raw[name]) != "STRING")
    for name in ("process_time_ms", "seq"):
        # 61.5 converts to a bigint (61): an integer field must be a JSON integer.
        wrong[name] = wrong[name] | ~F.schema_of_variant(raw[name]).isin("BIGINT", "INT", "SMALLINT", "TINYINT")
    out_of_range = {"process_time_ms": typed["process_time_ms"] < 0, "memory_used_mb": typed["memory_used_mb"] < 0,
                    "seq": typed["seq"] < 1}
    missing_names = _names_where(missing)
    wrong_names = _names_where({n: ~missing[n] & wrong[n] for n in _FIELDS})
    range_names = _names_where(out_of_range)
    reason = (
        F.when(F.col("payload").isNull() | (F.trim("payload") == ""), F.lit("empty_message"))
        .when(doc.isNull(), F.lit("invalid_json"))
        .when(~F.schema_of_variant(doc).startswith("OBJECT"), F.lit("not_a_json_object"))
        .when(missing_names.isNotNull(), F.concat(F.lit("missing_field:"), missing_names))
        .when(wrong_names.isNotNull(), F.concat(F.lit("wrong_type:"), wrong_names))
        .when(range_names.isNotNull(), F.concat(F.lit("out_of_range:"), range_names))
    )
    return messages.select(
        reason.alias("reason"),
        *[typed[name].alias(name) for name in _FIELDS],
        "received_at", "payload", "idx",
    )


def valid_events(parsed: DataFrame) -> DataFrame:
    """The valid rows of :func:`parse_messages`, in :data:`EVENT_COLUMNS` (none of them null)."""
    return parsed.where(F.col("reason").isNull()).select(*EVENT_COLUMNS)


def event_records(events: DataFrame, version: str = schema.CURRENT) -> DataFrame:
    """Kafka records of ``websocket-events``: key threadname, value the Avro record of ``version``,
    header ``avro.schema`` naming it."""
    record = F.struct(*[F.col(c) for c in EVENT_COLUMNS])
    header = F.struct(F.lit(schema.HEADER).alias("key"), F.lit(version.encode()).alias("value"))
    return events.select(
        F.col("threadname").cast("binary").alias("key"),
        to_avro(record, schema.schema_json(version)).alias("value"),
        F.array(header).alias("headers"),
    )


def dead_letter_records(parsed: DataFrame, url: str) -> DataFrame:
    """Kafka records of the dead-letter topic: JSON with reason, the raw text, when it arrived and from where."""
    letter = F.struct(
        F.col("reason"), F.lit(url).alias("source"), F.col("received_at"),
        F.col("payload").alias("raw"),
    )
    return parsed.where(F.col("reason").isNotNull()).select(
        F.lit(None).cast("binary").alias("key"), F.to_json(letter).cast("binary").alias("value"))


def seq_summary(events: DataFrame) -> DataFrame:
    """Per server run in a batch of valid events: its sequence numbers, sorted."""
    return events.groupBy("run_id").agg(F.sort_array(F.collect_list("seq")).alias("seqs"))


def count_gaps(seqs: list[int], previous_last: int | None) -> tuple[int, int, int]:
    """(missing, repeated, last seq) of one run's sorted sequence numbers in a batch, after the
    run's last seq before it (None: the run's first batch, which counts from its first seq).

    A WebSocket delivers in order, so a number skipped between two received ones was lost: sent
    while the reader was away (job down, reconnecting) or never delivered. A number at or below
    the last one seen is a repeat."""
    missing = repeated = 0
    last = previous_last
    for seq in seqs:
        if last is not None and seq <= last:
            repeated += 1
            continue
        if last is not None:
            missing += seq - last - 1
        last = seq
    return missing, repeated, last


def decode_events(kafka_df: DataFrame, reader_version: str = schema.CURRENT,
                  reader_schema_json: str | None = None) -> DataFrame:
    """``websocket-events`` records decoded with ``from_avro``: the writer schema is the one the
    record's ``avro.schema`` header names (records without the header: the oldest version),
    resolved to the reader schema (``reader_version``'s, or ``reader_schema_json``): fields the
    writer lacked get their defaults. One column per reader field, plus ``decode_error`` (null
    when decoded) and the Kafka coordinates. Malformed bytes never fail the query
    (``mode=PERMISSIVE``): they decode to null and get ``decode_error``."""
    reader_json = reader_schema_json or schema.schema_json(reader_version)
    header = F.filter(F.col("headers"), lambda h: h["key"] == F.lit(schema.HEADER))
    version = F.coalesce(F.element_at(header, 1)["value"].cast("string"), F.lit(schema.VERSIONS[0]))
    options = {"mode": "PERMISSIVE", "avroSchema": reader_json}
    decoded = None
    for writer in schema.VERSIONS:
        branch = from_avro(F.col("value"), schema.schema_json(writer), options)
        decoded = (F.when(version == writer, branch) if decoded is None else decoded.when(version == writer, branch))
    known = version.isin(*schema.VERSIONS)
    frame = kafka_df.select(
        decoded.alias("event"), version.alias("writer_schema"),
        F.when(~known, F.concat(F.lit("unknown_schema:"), version))
        # PERMISSIVE gives a struct of nulls for bytes it cannot read; threadname is never null in a record.
        .when(decoded.isNull() | decoded["threadname"].isNull(), F.concat(F.lit("undecodable_avro:"), version))
        .alias("decode_error"),
        "topic", F.col("partition").cast("int").alias("partition"), F.col("offset").cast("long").alias("offset"),
        F.col("timestamp").alias("kafka_timestamp"), "value",
    )
    return frame.select("event.*", "writer_schema", "decode_error", "topic", "partition", "offset",
                        "kafka_timestamp", "value")


def thread_stats(events: DataFrame, window: str = DEFAULT_WINDOW) -> DataFrame:
    """Per ``threadname`` and event-time window (tumbling ``window``): avg/max/min process time
    and memory, total memory and the number of samples. Works on a static frame and on a
    streaming one (then with the caller's watermark on ``event_time``)."""
    return (events.groupBy(F.window("event_time", window).alias("window"), "threadname")
            .agg(F.avg("process_time_ms").alias("avg_process_time_ms"),
                 F.max("process_time_ms").alias("max_process_time_ms"),
                 F.min("process_time_ms").alias("min_process_time_ms"),
                 F.avg("memory_used_mb").alias("avg_memory_used_mb"),
                 F.max("memory_used_mb").alias("max_memory_used_mb"),
                 F.min("memory_used_mb").alias("min_memory_used_mb"),
                 F.sum("memory_used_mb").alias("total_memory_used_mb"),
                 F.count(F.lit(1)).alias("count"))
            .select(F.col("window.start").cast("timestamp_ntz").alias("window_start"),
                    F.col("window.end").cast("timestamp_ntz").alias("window_end"), "threadname",
                    "avg_process_time_ms", "max_process_time_ms", "min_process_time_ms",
                    "avg_memory_used_mb", "max_memory_used_mb", "min_memory_used_mb",
                    "total_memory_used_mb", "count"))


def stats_records(stats: DataFrame) -> DataFrame:
    """Kafka records of ``websocket-thread-stats``: JSON of a window's statistics, keyed
    ``threadname|window_start`` (a later update of the same window has the same key)."""
    key = F.concat_ws("|", "threadname", F.date_format("window_start", "yyyy-MM-dd'T'HH:mm:ss'Z'"))
    value = F.to_json(F.struct(*[F.col(c) for c in stats.columns]), {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                                                                      "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'"})
    return stats.select(key.cast("binary").alias("key"), value.cast("binary").alias("value"))
