"""Streaming job B: Protobuf server metrics -> CSV files in the lake + per-minute aggregates in MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/checkpoints/metrics/protobuf_to_lake

One query over ``--source-topic`` (Spark's Kafka source, checkpoint ``--checkpoint``); each
micro-batch is read and decoded once, into one frame (:func:`transforms.decode_protobuf`):
a valid ``Metric`` is a row with its fields, a record that is not one is a row with its
reason and its dead letter (key and value, :func:`codec.dead_letter_record`). All rows go
through one deduplication (:func:`transforms.deduplicate_by_source`) into one foreachBatch
(:func:`write_batch`), which writes the batch's three outputs:

- CSV of the valid rows to ``<lake>/streaming/metrics_csv/batch_id=<id>/metric_name=<name>/``.
  A batch folder counts once it holds ``_SUCCESS`` (written by the output committer after
  all its files): readers (:func:`committed_csv_folders`) only read such folders, a
  replayed batch whose folder is complete is not written again, and an incomplete one
  (crash during the write) is overwritten;
- the batch's per-minute totals per host and metric (window_start, count, sum, min, max)
  are *added* to ``metric_minute_aggregates`` in one MySQL transaction that also records
  the batch id in ``metric_minute_aggregates_batches`` (keyed by the query id Spark keeps
  in the checkpoint): a replayed batch finds its id there and adds nothing;
- last, the dead letters, published to ``--dead-letter-topic`` by Spark's Kafka sink
  (``batch.write.format("kafka")``, :func:`kafka_io.write_kafka_batch`: the same connector
  and client settings as the source; the call returns when the records are acknowledged).

Dead letters: why this way. Spark's Kafka sink is the only way out (no producer of our own
inside the decoding tasks, as before), and a stream has one sink: this one is the
foreachBatch the metrics need. A second query, or a second branch of this one, would read
and decode every batch twice (the decode is most of the job's Python work). So the dead
letters ride with the metrics to the foreachBatch and leave from there with
``batch.write.format("kafka")``. The price: they pass the deduplication too, so they need a
key (their own Protobuf coordinates, unique) and a clock, which is why the deduplication
runs on the time each record reached the Protobuf topic (its Kafka timestamp, which every
record has) and not on the event time (which a dead letter lacks). Delivery is
at-least-once, like every non-transactional Kafka sink: a batch replayed after a crash
publishes its dead letters again (same key, so duplicates are obvious); being last, a batch
that failed on the lake or MySQL has sent none yet.

Replays are exact: the checkpoint replays a batch with the same offsets and the same dedup
state, so a replayed batch has the same rows, and each write above is skipped or repeated
whole. Together: exactly-once into the files and MySQL.

Why deduplicate: job A is at-least-once and republishes a replayed batch; a republished
record has the same JSON source coordinates. ``dropDuplicatesWithinWatermark`` remembers a
key until the newest ingest time seen is twice ``--watermark`` (2 minutes) past its first
copy, so the state stays bounded. Job A is the topic's only writer and replays only after
a restart, so while it is down that clock stands still and the copies it republishes are
recognised however long the outage was. Unlike the event-time watermark this job had
before, no event is dropped for being old: a late event is added to its (old) minute. A
row is dropped as late only if its ingest time is more than ``--watermark`` behind the
newest already seen, i.e. one partition read that far behind the others.

Why additive totals and not Spark's stateful window aggregation: a query with a
streaming aggregation outputs only the aggregates, so the files needed a second query
reading and decoding the topic again, with its own dedup and window state — about half
of the job's work and of each micro-batch's fixed cost. Adding a batch's totals under a
batch-id ledger is as exact; what it gives up is rebuilding MySQL by replaying the topic
into an existing table (a new checkpoint gets a new query id and adds again): start a
new checkpoint with an empty table (and lake folder), as for the CSV batch folders.
"""
from __future__ import annotations

import argparse
import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, ensure_table
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_batch
from spark_apps.streaming.metrics.transforms import (
    DEFAULT_WATERMARK,
    decode_protobuf,
    deduplicate_by_source,
)
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)

AGGREGATES_TABLE = "metric_minute_aggregates"
AGGREGATES_KEYS = ["window_start", "host", "metric_name"]
AGGREGATES_SCHEMA = T.StructType([
    T.StructField("window_start", T.TimestampNTZType()), T.StructField("host", T.StringType()),
    T.StructField("metric_name", T.StringType()), T.StructField("count", T.LongType()),
    T.StructField("sum", T.DoubleType()), T.StructField("min", T.DoubleType()),
    T.StructField("max", T.DoubleType()), T.StructField("avg", T.DoubleType()),
])
# Which micro-batches' totals were added, per stream (query id): a replayed batch adds nothing.
BATCHES_TABLE = "metric_minute_aggregates_batches"
BATCHES_SCHEMA = T.StructType([T.StructField("stream_id", T.StringType()),
                               T.StructField("batch_id", T.LongType())])
BATCHES_KEYS = ["stream_id", "batch_id"]
# Ledger rows kept per stream: Spark replays at most the last planned batch.
BATCHES_KEPT = 1000
CSV_SUBDIR = "streaming/metrics_csv"
CSV_COLUMNS = ["host", "region", "event_time_ms", "event_time", "value",
               "source_topic", "source_partition", "source_offset", "metric_name"]
# The query's rows: the CSV columns of a metric, or (reason set) a dead letter.
BATCH_COLUMNS = [*CSV_COLUMNS, "reason", "dead_letter_key", "dead_letter_value"]
BATCH_FOLDER_PREFIX = "batch_id="
COMMIT_MARKER = "_SUCCESS"  # written by Hadoop's output committer when a write job commits
APP_NAME = "metrics_protobuf_to_lake_and_mysql"
# Rows per micro-batch when the caller does not say (see json_to_protobuf).
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 500_000


def csv_uri(lake_uri: str) -> str:
    return lake.join(lake_uri, CSV_SUBDIR)


def csv_batch_uri(csv_root: str, batch_id: int) -> str:
    """The folder of one micro-batch's CSV files."""
    return lake.join(csv_root, f"{BATCH_FOLDER_PREFIX}{int(batch_id)}")


def committed_csv_folders(spark: SparkSession, csv_root: str) -> list[str]:
    """URIs of the batch folders whose write committed (holding ``_SUCCESS``), by batch id."""
    markers = lake.glob(spark, lake.join(csv_root, f"{BATCH_FOLDER_PREFIX}*", COMMIT_MARKER))
    return sorted((marker.rsplit("/", 1)[0] for marker in markers), key=batch_id_of_folder)


def batch_id_of_folder(folder: str) -> int:
    """``.../batch_id=12`` -> 12."""
    name = folder.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith(BATCH_FOLDER_PREFIX):
        raise ValueError(f"not a batch folder: {folder}")
    return int(name[len(BATCH_FOLDER_PREFIX):])


def batch_rows(decoded: DataFrame, watermark: str) -> DataFrame:
    """The query's rows (:data:`BATCH_COLUMNS`): decoded records, deduplicated on their source
    coordinates; ``reason`` null for a metric, else the dead letter's key and value."""
    return deduplicate_by_source(decoded, watermark).select(*BATCH_COLUMNS)


def batch_summary(batch: DataFrame) -> tuple[list[tuple], int, int]:
    """One Spark job over a micro-batch of :func:`batch_rows`: (per-minute totals, number of
    metrics, number of dead letters). Totals are tuples in :data:`AGGREGATES_SCHEMA` order
    (window_start as a UTC wall-clock datetime, avg of the batch's rows)."""
    minute = F.date_trunc("minute", F.col("event_time")).cast("timestamp_ntz")
    rows = (batch.groupBy(F.col("reason").isNotNull().alias("dead"), minute.alias("window_start"),
                          "host", "metric_name")
            .agg(F.count(F.lit(1)).alias("count"), F.sum("value").alias("sum"),
                 F.min("value").alias("min"), F.max("value").alias("max"))
            .collect())
    totals = [(r["window_start"], r["host"], r["metric_name"], r["count"], r["sum"], r["min"], r["max"],
               r["sum"] / r["count"]) for r in rows if not r["dead"]]
    return (totals, sum(r["count"] for r in rows if not r["dead"]),
            sum(r["count"] for r in rows if r["dead"]))


def write_batch(batch: DataFrame, batch_id: int, csv_root: str, db: ResultsDb | None,
                stream_id: str, publish_dead_letters=None) -> int:
    """foreachBatch of the query: metrics to the batch's CSV folder (skipped when a previous
    attempt of the batch committed it), the batch's per-minute totals added to MySQL
    (skipped when already added; ``db`` None: no MySQL write), then the dead letters handed
    as a (key, value) frame to ``publish_dead_letters`` (None: not published), which must
    raise unless all were delivered. Returns the batch's metrics."""
    spark = batch.sparkSession
    batch = batch.persist()  # one evaluation of the stateful plan for all writes
    try:
        totals, metrics, dead = batch_summary(batch)
        folder = csv_batch_uri(csv_root, batch_id)
        if metrics and not lake.exists(spark, lake.join(folder, COMMIT_MARKER)):
            (batch.where(F.col("reason").isNull()).select(*CSV_COLUMNS)
             .write.mode("overwrite").option("header", "true").partitionBy("metric_name").csv(folder))
        if db is not None:
            add_aggregates(db, stream_id, batch_id, totals)
        if dead and publish_dead_letters is not None:
            publish_dead_letters(batch.where(F.col("reason").isNotNull()).select(
                F.col("dead_letter_key").alias("key"), F.col("dead_letter_value").alias("value")))
        return metrics
    finally:
        batch.unpersist()


_tables_ready: set[tuple] = set()


def _ensure_tables(db: ResultsDb) -> None:
    key = (db.host, db.port, db.database)
    if key not in _tables_ready:
        ensure_table(db, AGGREGATES_TABLE, AGGREGATES_SCHEMA, AGGREGATES_KEYS)
        ensure_table(db, BATCHES_TABLE, BATCHES_SCHEMA, BATCHES_KEYS)
        _tables_ready.add(key)


def _add_sql() -> str:
    columns = [f.name for f in AGGREGATES_SCHEMA.fields]
    names = ", ".join(f"`{c}`" for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    # avg first: it reads the old count and sum whether the server applies the
    # assignments left to right (MySQL, MariaDB) or all at once.
    return (f"INSERT INTO `{AGGREGATES_TABLE}` ({names}) VALUES ({marks}) ON DUPLICATE KEY UPDATE "
            "`avg` = (`sum` + VALUES(`sum`)) / (`count` + VALUES(`count`)), "
            "`count` = `count` + VALUES(`count`), `sum` = `sum` + VALUES(`sum`), "
            "`min` = LEAST(`min`, VALUES(`min`)), `max` = GREATEST(`max`, VALUES(`max`))")


def add_aggregates(db: ResultsDb, stream_id: str, batch_id: int, totals: list[tuple]) -> int:
    """Add one micro-batch's per-minute totals to MySQL, once per (stream, batch): the batch
    id goes into the ledger table in the same transaction, and a batch already there adds
    nothing. Returns the number of windows added (0 for a replayed or empty batch)."""
    if not totals:
        return 0
    _ensure_tables(db)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            fresh = cur.execute(
                f"INSERT IGNORE INTO `{BATCHES_TABLE}` (stream_id, batch_id) VALUES (%s, %s)",
                (stream_id, int(batch_id)))
            if not fresh:
                conn.rollback()
                return 0
            cur.executemany(_add_sql(), totals)
            cur.execute(f"DELETE FROM `{BATCHES_TABLE}` WHERE stream_id = %s AND batch_id < %s",
                        (stream_id, int(batch_id) - BATCHES_KEPT))
        conn.commit()
        return len(totals)
    finally:
        conn.close()


def stream_id_of(spark: SparkSession, checkpoint: str) -> str:
    """The query id Spark keeps in the checkpoint's ``metadata`` file (new checkpoint, new id)."""
    return json.loads(lake.read_text(spark, lake.join(checkpoint, "metadata")))["id"]


def start_query(
    spark: SparkSession,
    bootstrap: str,
    lake_uri: str,
    checkpoint: str,
    db: ResultsDb,
    source_topic: str = "metric-protobuf",
    dead_letter_topic: str = "metric-dead-letter",
    watermark: str = DEFAULT_WATERMARK,
    trigger_seconds: float = 30,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> StreamingQuery:
    """Start job B's query (``startingOffsets`` only applies to a new checkpoint)."""
    source = read_kafka_stream(
        spark, bootstrap, source_topic, kafka_options, startingOffsets=starting_offsets,
        maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER)
    csv_root = csv_uri(lake_uri)
    stream_ids: dict[str, str] = {}  # read once, at the first batch (Spark wrote it at start)

    def publish_dead_letters(letters: DataFrame) -> None:
        write_kafka_batch(letters, bootstrap, dead_letter_topic, kafka_options)

    def write(batch: DataFrame, batch_id: int) -> None:
        if "id" not in stream_ids:
            stream_ids["id"] = stream_id_of(batch.sparkSession, checkpoint)
        write_batch(batch, batch_id, csv_root, db, stream_ids["id"], publish_dead_letters)

    return (
        batch_rows(decode_protobuf(source), watermark)
        .writeStream.queryName(APP_NAME)
        .outputMode("append")
        .foreachBatch(write)
        .option("checkpointLocation", checkpoint)
        .trigger(**trigger_options(available_now, trigger_seconds))
        .start()
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Protobuf server metrics -> lake CSV + MySQL aggregates")
    add_streaming_arguments(parser, trigger_seconds=30)
    parser.add_argument("--source-topic", default="metric-protobuf")
    parser.add_argument("--dead-letter-topic", default="metric-dead-letter")
    parser.add_argument("--lake", required=True, help="lake root URI; CSV goes to <lake>/" + CSV_SUBDIR)
    parser.add_argument("--watermark", default=DEFAULT_WATERMARK,
                        help="how long (ingest time) a republished copy is recognised, e.g. '2 minutes'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    query = start_query(
        spark, args.bootstrap, args.lake, args.checkpoint, ResultsDb.from_env(),
        args.source_topic, args.dead_letter_topic, args.watermark, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, [query], args.status_uri)
    else:
        query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
