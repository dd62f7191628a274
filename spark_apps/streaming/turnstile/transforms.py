"""DataFrame functions of the turnstile pipeline: validation in Spark SQL, the keyed state per
turnstile (``applyInPandasWithState`` over :mod:`.cleaning`), window sums of a micro-batch.

Input is a Kafka-shaped frame (``key``, ``value``, ``topic``, ``partition``, ``offset``,
``timestamp``), each value one reading as the producer sends it: a JSON object with the file's
fields as strings (``C/A``, ``UNIT``, ``SCP``, ``STATION``, ``LINENAME``, ``DIVISION``, ``DATE``,
``TIME``, ``DESC``, ``ENTRIES``, ``EXITS``).

:func:`checked` types every reading (values trimmed: the files carry trailing spaces; counters as
64-bit integers, zero padding allowed; ``DATE TIME`` as ``MM/dd/yyyy HH:mm:ss`` wall-clock time,
kept as is in UTC-zoned timestamps) and gives each a ``reason``, null for a good one, else the first
that applies: ``empty_value``, ``invalid_json``, ``not_a_json_object``, ``missing_field:<names>``
(absent, null or blank), ``bad_counter:<names>`` (not digits, or beyond 64 bits), ``bad_time``,
``unknown_desc:<desc>`` (neither ``REGULAR`` nor ``RECOVR AUD``).

Why ``applyInPandasWithState`` for the deltas: it is the keyed-state API that runs unchanged on
pyspark 4.2 (here) and 4.0.x (EMR's emr-spark-8.0.0); ``transformWithStateInPandas`` needs the
RocksDB state store and changed its Python API between 4.0 and 4.1.
"""
from __future__ import annotations

from collections import namedtuple

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming.state import GroupStateTimeout

from spark_apps.streaming.turnstile import cleaning

FIELDS = ("C/A", "UNIT", "SCP", "STATION", "LINENAME", "DIVISION", "DATE", "TIME", "DESC", "ENTRIES", "EXITS")
READING_SCHEMA = T.StructType([T.StructField(name, T.StringType()) for name in FIELDS])
# Digits only (any zero padding), at most 18 significant ones: always below 2^63.
COUNTER_PATTERN = r"^0*[0-9]{1,18}$"
TIME_PATTERN = "MM/dd/yyyy HH:mm:ss"
DEFAULT_WINDOW = "4 hours"
DEFAULT_LATENESS = "8 hours"

READING_COLUMNS = ["turnstile", "at", "at_ms", "desc", "entries", "exits", "station", "line", "division",
                   "raw", "source_topic", "source_partition", "source_offset"]
# Rows out of the keyed state: kind "interval" (a signed contribution to the window of at_ms),
# "late" (a reading older than the watermark: raw and source set), or a count of the turnstile's
# batch (kind "readings", "recovr_duplicate", "repeat": the number in ``count``).
OUTPUT_SCHEMA = T.StructType([
    T.StructField("kind", T.StringType()), T.StructField("at_ms", T.LongType()),
    T.StructField("station", T.StringType()), T.StructField("line", T.StringType()),
    T.StructField("division", T.StringType()),
    *[T.StructField(name, T.LongType()) for name in
      ("entries", "exits", "intervals", "entries_dropped", "exits_dropped", "gap_dropped", "count")],
    T.StructField("raw", T.StringType()), T.StructField("source_topic", T.StringType()),
    T.StructField("source_partition", T.IntegerType()), T.StructField("source_offset", T.LongType()),
    T.StructField("watermark_ms", T.LongType()),
])
# The columns the state function reads, one namedtuple per reading.
_StateInput = namedtuple("_StateInput", ["at_ms", "desc", "entries", "exits", "station", "line", "division", "raw",
                                         "source_topic", "source_partition", "source_offset"])
STATE_SCHEMA = T.StructType([T.StructField("readings", T.StringType())])
SUMS = ("entries", "exits", "intervals", "entries_dropped", "exits_dropped", "gap_dropped")


def _field(parsed: Column, name: str) -> Column:
    return F.trim(parsed.getField(name))


def checked(kafka_df: DataFrame) -> DataFrame:
    """Every record with its ``reason`` (null: a good reading) and the typed reading
    (:data:`READING_COLUMNS`)."""
    text = F.col("value").cast("string")
    parsed = kafka_df.select(
        F.col("value").alias("raw_bytes"), F.col("topic").alias("source_topic"),
        F.col("partition").cast("int").alias("source_partition"), F.col("offset").cast("long").alias("source_offset"),
        F.try_parse_json(text).alias("variant"), F.from_json(text, READING_SCHEMA).alias("r"),
    )
    r = F.col("r")
    values = {name: _field(r, name) for name in FIELDS}
    missing = F.filter(F.array(*[F.when(F.coalesce(F.length(v), F.lit(0)) == 0, F.lit(name)) for name, v in
                                 values.items()]), lambda x: x.isNotNull())
    bad_counters = F.filter(F.array(*[F.when(~values[name].rlike(COUNTER_PATTERN), F.lit(name))
                                      for name in ("ENTRIES", "EXITS")]), lambda x: x.isNotNull())
    at = F.try_to_timestamp(F.concat_ws(" ", values["DATE"], values["TIME"]), F.lit(TIME_PATTERN))
    raw = F.col("raw_bytes")
    raw_text = raw.cast("string")
    reason = (
        F.when(raw.isNull() | (F.length(raw) == 0), F.lit("empty_value"))
        .when(F.col("variant").isNull(), F.lit("invalid_json"))
        .when(~F.schema_of_variant(F.col("variant")).startswith("OBJECT"), F.lit("not_a_json_object"))
        .when(F.size(missing) > 0, F.concat(F.lit("missing_field:"), F.array_join(missing, ",")))
        .when(F.size(bad_counters) > 0, F.concat(F.lit("bad_counter:"), F.array_join(bad_counters, ",")))
        .when(at.isNull(), F.lit("bad_time"))
        .when(~values["DESC"].isin(*cleaning.DESCRIPTIONS), F.concat(F.lit("unknown_desc:"), values["DESC"]))
    )
    return parsed.select(
        reason.alias("reason"),
        F.concat_ws(":", values["C/A"], values["UNIT"], values["SCP"]).alias("turnstile"),
        at.alias("at"), F.unix_millis(at).alias("at_ms"), values["DESC"].alias("desc"),
        values["ENTRIES"].try_cast("long").alias("entries"), values["EXITS"].try_cast("long").alias("exits"),
        values["STATION"].alias("station"), values["LINENAME"].alias("line"), values["DIVISION"].alias("division"),
        F.when(raw.isNotNull() & F.is_valid_utf8(raw_text), raw_text).alias("raw"),
        "source_topic", "source_partition", "source_offset", F.base64(raw).alias("raw_base64"),
    )


def readings(checked_df: DataFrame) -> DataFrame:
    return checked_df.where(F.col("reason").isNull()).select(*READING_COLUMNS)


def dead_letters(checked_df: DataFrame) -> DataFrame:
    """The bad records of :func:`checked` as Kafka records (``key``, ``value``) in the platform's
    dead-letter format (key ``topic:partition:offset``; JSON with reason, source and raw value)."""
    body = F.struct("reason", "source_topic", "source_partition", "source_offset",
                    F.col("raw").alias("raw_value_text"), F.col("raw_base64").alias("raw_value_base64"))
    return checked_df.where(F.col("reason").isNotNull()).select(_source_key().alias("key"),
                                                                F.to_json(body).cast("binary").alias("value"))


def _source_key() -> Column:
    return F.concat_ws(":", "source_topic", F.col("source_partition").cast("string"),
                       F.col("source_offset").cast("string")).cast("binary")


def _output(kind: str, at_ms=None, station=None, line=None, division=None, count=None, sums=(0,) * 6,
            raw=None, source=(None, None, None), watermark_ms=None) -> tuple:
    return (kind, at_ms, station, line, division, *sums, count, raw, *source, watermark_ms)


def _interval_row(interval: cleaning.Interval) -> tuple:
    return _output("interval", interval.at_ms, interval.station, interval.line, interval.division,
                   sums=(interval.entries, interval.exits, interval.intervals, interval.entries_dropped,
                         interval.exits_dropped, interval.gap_dropped))


def turnstile_state_function(max_delta: int, max_gap_ms: int):
    """The ``applyInPandasWithState`` function: one turnstile's readings of a micro-batch through
    :func:`cleaning.advance` against its kept readings (the state: JSON text)."""

    def apply(key, frames, state):
        # Per-group pandas work dominated this function (profiled: DataFrame.astype, concat,
        # sort_values and itertuples took ~90 % of the time for ~20 readings a turnstile), so
        # the batch is read as plain column lists (one namedtuple per reading) and the output
        # built as object columns, which Arrow turns into nullable int64/string without a
        # per-group astype.
        frames = list(frames)
        batch = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        # Source order, so that a replayed batch decides ties (repeats) the same way (stable).
        rows_in = sorted(map(_StateInput._make, zip(*(batch[name].tolist() for name in _StateInput._fields))),
                         key=lambda r: (r.source_partition, r.source_offset))
        arriving = [cleaning.Reading(int(r.at_ms), r.desc, int(r.entries), int(r.exits), r.station, r.line,
                                     r.division) for r in rows_in]
        kept = cleaning.load_state(state.get[0]) if state.exists else []
        watermark_ms = max(0, state.getCurrentWatermarkMs())
        result = cleaning.advance(kept, arriving, watermark_ms, max_delta, max_gap_ms)
        state.update((cleaning.dump_state(result.kept),))
        rows = [_interval_row(i) for i in result.contributions]
        for index in result.late:
            r = rows_in[index]
            rows.append(_output("late", int(r.at_ms), r.station, r.line, r.division, raw=r.raw,
                                source=(r.source_topic, int(r.source_partition), int(r.source_offset)),
                                watermark_ms=watermark_ms))
        rows.append(_output("readings", count=len(arriving)))
        rows += [_output(reason, count=n) for reason, n in result.dropped.items() if n]
        # dtype=object: None stays null and numbers stay exact Python integers (no float64 detour).
        yield pd.DataFrame(rows, columns=OUTPUT_SCHEMA.fieldNames(), dtype=object)

    return apply


def turnstile_intervals(reading_rows: DataFrame, lateness: str = DEFAULT_LATENESS,
                        max_delta: int = cleaning.DEFAULT_MAX_DELTA,
                        max_gap_ms: int = cleaning.DEFAULT_MAX_GAP_MS) -> DataFrame:
    """The keyed state per turnstile over a stream of :func:`readings` with a watermark of
    ``lateness`` on the reading time (:data:`OUTPUT_SCHEMA` rows)."""
    return (reading_rows.withWatermark("at", lateness).groupBy("turnstile")
            .applyInPandasWithState(turnstile_state_function(max_delta, max_gap_ms), OUTPUT_SCHEMA, STATE_SCHEMA,
                                    "append", GroupStateTimeout.NoTimeout))


def window_sums(state_rows: DataFrame, window: str = DEFAULT_WINDOW) -> DataFrame:
    """Per event-time tumbling window (of the interval's later reading), station and line: the sums
    of a static frame of :func:`turnstile_intervals` rows. ``window_start``/``window_end`` are
    wall-clock times (timestamp_ntz), ``service_date`` the window start's date."""
    intervals = state_rows.where(F.col("kind") == "interval")
    sums = intervals.groupBy(F.window(F.timestamp_millis("at_ms"), window).alias("window"), "station", "line").agg(
        F.max_by("division", "at_ms").alias("division"), *[F.sum(name).alias(name) for name in SUMS])
    start = F.col("window.start").cast("timestamp_ntz")
    return sums.select("station", "line", start.alias("window_start"),
                       F.col("window.end").cast("timestamp_ntz").alias("window_end"),
                       F.to_date(start).alias("service_date"), "division", *SUMS)


def late_letters(state_rows: DataFrame) -> DataFrame:
    """The late readings as Kafka records for the late-data topic (key ``topic:partition:offset``;
    JSON with the reading time, the watermark it missed, the source and the raw value)."""
    body = F.struct(F.lit("late").alias("reason"),
                    F.date_format(F.timestamp_millis("at_ms"), "yyyy-MM-dd'T'HH:mm:ss").alias("reading_time"),
                    F.date_format(F.timestamp_millis("watermark_ms"), "yyyy-MM-dd'T'HH:mm:ss").alias("watermark"),
                    "source_topic", "source_partition", "source_offset", F.col("raw").alias("raw_value_text"))
    return state_rows.where(F.col("kind") == "late").select(_source_key().alias("key"),
                                                            F.to_json(body).cast("binary").alias("value"))
