"""Turnstile streaming job: MTA readings on Kafka -> windowed ridership in the lake and MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/turnstile/job.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/streaming/_checkpoints/turnstile \\
        --status-uri s3://lake/streaming/_status/turnstile

Two queries over ``--source-topic`` (``turnstile-readings``; Spark's Kafka source, one checkpoint
each under ``--checkpoint``), both typing every record with :func:`transforms.checked` (Spark SQL):

* ``turnstile_dead_letters`` (stateless): the bad records, with their reason and source offset,
  published to ``--dead-letter-topic`` by Spark's Kafka sink from a foreachBatch
  (:func:`kafka_io.write_kafka_batch`), their count per reason into MySQL
  ``turnstile_stream_quality``.
* ``turnstile_ridership`` (stateful): the good readings, with a watermark of ``--lateness`` on the
  reading time, keyed by turnstile through ``applyInPandasWithState``
  (:func:`transforms.turnstile_intervals`: the cleaning rules of :mod:`.cleaning`, each
  turnstile's recent readings in the state store). Its rows are the intervals' signed
  contributions, the late readings and counts. Each micro-batch's foreachBatch
  (:func:`write_batch`) sums the contributions per event-time tumbling window (``--window``, 4 h),
  station and line (:func:`transforms.window_sums`) and writes, in this order:

  1. the lake: one gzip CSV per window and batch,
     ``<lake>/streaming/turnstile_windows/service_date=<date>/window=<start>_batch=<id>.csv.gz``
     (what the batch added to the window; the warehouse DAG sums the files). Named by window and
     batch, never by the clock: a replayed batch writes the same bytes under the same names;
  2. MySQL: the batch's sums upserted into ``turnstile_ridership_batches`` keyed by (stream, batch,
     station, line, window start), then every window the batch touched recomputed from them and
     upserted into ``turnstile_ridership`` keyed by (station, line, window start) - absolute totals,
     so a corrected window replaces its row and a replayed batch changes nothing. The stream id is
     the query id of the checkpoint: a replay of the topic through a new checkpoint rebuilds the
     totals of the windows it touches instead of adding to them;
  3. the counts of the batch (readings, RECOVR AUD duplicates, repeats, late, dropped deltas) into
     ``turnstile_stream_quality`` keyed by (query, stream, batch);
  4. last, the late readings to ``--late-topic`` (Spark's Kafka sink, at-least-once like every
     non-transactional Kafka sink: a batch replayed after a crash sends them again, keyed by their
     source coordinates, so duplicates are obvious).

Why the windows are summed in the foreachBatch and not by Spark's streaming window aggregation
after the keyed state: late readings must reach their own topic, and the watermark decision that
makes a reading late must be the same one that keeps it out of the windows. Spark's aggregation
drops rows older than its watermark silently (a metric, no rows), and a query has one sink. Here one
operator decides (:func:`cleaning.advance` against ``GroupState.getCurrentWatermarkMs``), on replay
the same way (Spark replays a batch with its offsets, watermark and state version): windows that end
before the watermark get nothing more, readings that would have changed them go to the late topic.
Corrections within the watermark arrive as signed contributions (a retraction and the new value).

Exactly once across restarts: the lake files and both MySQL tables are overwritten or upserted by
keys that a replayed batch reproduces exactly. A crash anywhere replays the batch; the supervisor
(Airflow task retries) resubmits the job and it resumes from its checkpoints.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, ensure_table, upsert_values
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_batch
from spark_apps.streaming.metrics.protobuf_to_lake_and_mysql import stream_id_of
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)
from spark_apps.streaming.turnstile import cleaning, transforms

APP_NAME = "turnstile_streaming"
RIDERSHIP_QUERY = "turnstile_ridership"
DEAD_LETTERS_QUERY = "turnstile_dead_letters"
SOURCE_TOPIC = "turnstile-readings"
DEAD_LETTER_TOPIC = "turnstile-dead-letter"
LATE_TOPIC = "turnstile-late"
WINDOWS_SUBDIR = "streaming/turnstile_windows"
DEFAULT_TRIGGER_SECONDS = 10.0
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 200_000

_SUMS = [T.StructField(name, T.LongType()) for name in transforms.SUMS]
_WINDOW = [T.StructField("station", T.StringType()), T.StructField("line", T.StringType()),
           T.StructField("window_start", T.TimestampNTZType()), T.StructField("window_end", T.TimestampNTZType()),
           T.StructField("service_date", T.DateType()), T.StructField("division", T.StringType())]
RIDERSHIP_TABLE = "turnstile_ridership"
RIDERSHIP_KEYS = ["station", "line", "window_start"]
RIDERSHIP_SCHEMA = T.StructType([*_WINDOW, *_SUMS, T.StructField("stream_id", T.StringType()),
                                 T.StructField("batch_id", T.LongType())])
CONTRIBUTIONS_TABLE = "turnstile_ridership_batches"
# Created here rather than from the schema: its key of three strings must fit InnoDB's 3072 bytes.
CONTRIBUTIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS `{CONTRIBUTIONS_TABLE}` (stream_id VARCHAR(36) NOT NULL, batch_id BIGINT NOT NULL, "
    "station VARCHAR(100) NOT NULL, line VARCHAR(40) NOT NULL, window_start DATETIME NOT NULL, window_end DATETIME, "
    "service_date DATE, division VARCHAR(16), " + ", ".join(f"{name} BIGINT" for name in transforms.SUMS)
    + ", PRIMARY KEY (stream_id, batch_id, station, line, window_start))"
)
CONTRIBUTIONS_KEYS = ["stream_id", "batch_id", "station", "line", "window_start"]
CONTRIBUTIONS_SCHEMA = T.StructType([T.StructField("stream_id", T.StringType()), T.StructField("batch_id", T.LongType()),
                                     *_WINDOW, *_SUMS])
QUALITY_TABLE = "turnstile_stream_quality"
QUALITY_KEYS = ["query", "stream_id", "batch_id"]
QUALITY_COUNTS = ("readings", "late", "recovr_duplicate", "repeat", "dead_letters")
QUALITY_SCHEMA = T.StructType([T.StructField("query", T.StringType()), T.StructField("stream_id", T.StringType()),
                               T.StructField("batch_id", T.LongType()),
                               *[T.StructField(name, T.LongType()) for name in QUALITY_COUNTS],
                               T.StructField("reasons_json", T.StringType())])
CSV_COLUMNS = [f.name for f in _WINDOW] + list(transforms.SUMS) + ["batch_id"]


def windows_uri(lake_uri: str) -> str:
    return lake.join(lake_uri, WINDOWS_SUBDIR)


def window_file_uri(root: str, window_start, batch_id: int) -> str:
    """``<root>/service_date=2015-06-20/window=20150620T0400_batch=12.csv.gz``."""
    return lake.join(root, f"service_date={window_start:%Y-%m-%d}",
                     f"window={window_start:%Y%m%dT%H%M}_batch={int(batch_id)}.csv.gz")


def window_csv(rows: list[dict], batch_id: int) -> bytes:
    """One window's rows as gzip CSV with a header; ``mtime=0`` so the same rows give the same bytes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in sorted(rows, key=lambda r: (r["station"], r["line"])):
        writer.writerow([*(row[name] for name in CSV_COLUMNS[:-1]), batch_id])
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


_RECOMPUTE_SQL = (
    f"INSERT INTO `{RIDERSHIP_TABLE}` (station, line, window_start, window_end, service_date, division, "
    + ", ".join(transforms.SUMS) + ", stream_id, batch_id) "
    "SELECT station, line, window_start, MAX(window_end), MAX(service_date), MAX(division), "
    + ", ".join(f"SUM({name})" for name in transforms.SUMS) + ", stream_id, %s "
    f"FROM `{CONTRIBUTIONS_TABLE}` WHERE stream_id = %s AND (station, line, window_start) IN "
    f"(SELECT station, line, window_start FROM `{CONTRIBUTIONS_TABLE}` WHERE stream_id = %s AND batch_id = %s) "
    "GROUP BY station, line, window_start, stream_id ON DUPLICATE KEY UPDATE "
    + ", ".join(f"{name} = VALUES({name})" for name in
                ("window_end", "service_date", "division", *transforms.SUMS, "stream_id", "batch_id"))
)


def upsert_windows(db: ResultsDb, stream_id: str, batch_id: int, windows: list[dict]) -> None:
    """The batch's window sums into the contributions table, then the windows it touched recomputed
    (sum over the stream's batches) into ``turnstile_ridership``. Both steps are idempotent."""
    ensure_table(db, RIDERSHIP_TABLE, RIDERSHIP_SCHEMA, RIDERSHIP_KEYS)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(CONTRIBUTIONS_DDL)
        upsert_values(db, CONTRIBUTIONS_TABLE, CONTRIBUTIONS_SCHEMA, CONTRIBUTIONS_KEYS,
                      [(stream_id, batch_id, *(w[f.name] for f in CONTRIBUTIONS_SCHEMA.fields[2:])) for w in windows])
        with conn.cursor() as cur:
            cur.execute(_RECOMPUTE_SQL, (batch_id, stream_id, stream_id, batch_id))
        conn.commit()
    finally:
        conn.close()


def record_quality(db: ResultsDb, query: str, stream_id: str, batch_id: int, counts: dict[str, int]) -> None:
    values = [counts.get(name, 0) for name in QUALITY_COUNTS]
    upsert_values(db, QUALITY_TABLE, QUALITY_SCHEMA, QUALITY_KEYS,
                  [(query, stream_id, batch_id, *values, json.dumps(dict(sorted(counts.items()))))])


def write_batch(batch: DataFrame, batch_id: int, windows_root: str, db: ResultsDb | None, stream_id: str,
                window: str = transforms.DEFAULT_WINDOW, publish_late=None) -> dict[str, int]:
    """foreachBatch of ``turnstile_ridership`` over :func:`transforms.turnstile_intervals` rows: lake
    files, MySQL windows and counts, then the late readings handed as a (key, value) frame to
    ``publish_late`` (None: not published), which must raise unless all were delivered. Returns
    the batch's counts."""
    spark = batch.sparkSession
    batch = batch.persist()
    try:
        # A micro-batch touches a few windows of each station and line: small enough to collect.
        windows = [row.asDict() for row in transforms.window_sums(batch, window).collect()]
        counts = {row["kind"]: int(row["n"]) for row in batch.where(F.col("kind") != "interval").groupBy("kind")
                  .agg(F.sum(F.when(F.col("kind") == "late", 1).otherwise(F.col("count"))).alias("n")).collect()}
        for name in ("entries_dropped", "exits_dropped", "gap_dropped"):
            counts[name] = sum(w[name] for w in windows)
        by_window: dict = {}
        for row in windows:
            by_window.setdefault(row["window_start"], []).append(row)
        for start, rows in by_window.items():
            lake.write_bytes(spark, window_file_uri(windows_root, start, batch_id), window_csv(rows, batch_id))
        if db is not None:
            if windows:
                upsert_windows(db, stream_id, batch_id, windows)
            record_quality(db, RIDERSHIP_QUERY, stream_id, batch_id, counts)
        if counts.get("late") and publish_late is not None:
            publish_late(transforms.late_letters(batch))
        return counts
    finally:
        batch.unpersist()


def write_dead_letters(batch: DataFrame, batch_id: int, db: ResultsDb | None, stream_id: str,
                       publish_dead_letters=None) -> int:
    """foreachBatch of ``turnstile_dead_letters`` over :func:`transforms.checked` rows: the bad
    records published, their count per reason recorded. Returns the number of dead letters."""
    batch = batch.where(F.col("reason").isNotNull()).persist()
    try:
        reasons = {row["reason"]: int(row["count"]) for row in
                   batch.groupBy(F.substring_index("reason", ":", 1).alias("reason")).count().collect()}
        dead = sum(reasons.values())
        if dead and publish_dead_letters is not None:
            publish_dead_letters(transforms.dead_letters(batch))
        if db is not None and dead:
            record_quality(db, DEAD_LETTERS_QUERY, stream_id, batch_id, {"dead_letters": dead, **reasons})
        return dead
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
    late_topic: str = LATE_TOPIC,
    window: str = transforms.DEFAULT_WINDOW,
    lateness: str = transforms.DEFAULT_LATENESS,
    max_delta: int = cleaning.DEFAULT_MAX_DELTA,
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> list[StreamingQuery]:
    """Start both queries (checkpoints ``<checkpoint>/ridership`` and ``<checkpoint>/dead_letters``)."""
    trigger = trigger_options(available_now, trigger_seconds)
    root = windows_uri(lake_uri)
    stream_ids: dict[str, str] = {}  # per checkpoint, read at its first batch (Spark wrote it at start)

    def stream_id(name: str) -> str:
        if name not in stream_ids:
            stream_ids[name] = stream_id_of(spark, lake.join(checkpoint, name))
        return stream_ids[name]

    def ridership_batch(batch: DataFrame, batch_id: int) -> None:
        write_batch(batch, batch_id, root, db, stream_id("ridership"), window,
                    lambda late: write_kafka_batch(late, bootstrap, late_topic, kafka_options))

    def dead_letter_batch(batch: DataFrame, batch_id: int) -> None:
        write_dead_letters(batch, batch_id, db, stream_id("dead_letters"),
                           lambda letters: write_kafka_batch(letters, bootstrap, dead_letter_topic, kafka_options))

    source = _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger)
    ridership = (
        transforms.turnstile_intervals(transforms.readings(transforms.checked(source)), lateness, max_delta)
        .writeStream.queryName(RIDERSHIP_QUERY).outputMode("append").foreachBatch(ridership_batch)
        .option("checkpointLocation", lake.join(checkpoint, "ridership")).trigger(**trigger).start()
    )
    source = _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger)
    dead_letters = (
        transforms.checked(source).writeStream.queryName(DEAD_LETTERS_QUERY).outputMode("append")
        .foreachBatch(dead_letter_batch)
        .option("checkpointLocation", lake.join(checkpoint, "dead_letters")).trigger(**trigger).start()
    )
    return [ridership, dead_letters]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MTA turnstile readings -> windowed ridership (lake + MySQL)")
    add_streaming_arguments(parser, trigger_seconds=DEFAULT_TRIGGER_SECONDS)
    parser.add_argument("--lake", required=True, help="lake root URI; windows go to <lake>/" + WINDOWS_SUBDIR)
    parser.add_argument("--source-topic", default=SOURCE_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--late-topic", default=LATE_TOPIC)
    parser.add_argument("--window", default=transforms.DEFAULT_WINDOW, help="tumbling window length, e.g. '4 hours'")
    parser.add_argument("--lateness", default=transforms.DEFAULT_LATENESS,
                        help="watermark delay: how late (event time) a reading may arrive and still count")
    parser.add_argument("--max-delta", type=int, default=cleaning.DEFAULT_MAX_DELTA,
                        help="a counter's delta of this or more in one interval is dropped")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    queries = start_queries(
        spark, args.bootstrap, args.lake, args.checkpoint, ResultsDb.from_env(), args.source_topic,
        args.dead_letter_topic, args.late_topic, args.window, args.lateness, args.max_delta, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, queries, args.status_uri)
    else:
        for query in queries:
            query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
