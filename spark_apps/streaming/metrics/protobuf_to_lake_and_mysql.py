"""Streaming job B: Protobuf server metrics -> CSV files in the lake + per-minute aggregates in MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/checkpoints/metrics/protobuf_to_lake

One query over ``--source-topic`` (checkpoint ``--checkpoint``): each micro-batch is read
and decoded once (:func:`transforms.from_protobuf_sending_dead_letters`):

* records that do not decode as a valid ``Metric`` are dead letters, published as JSON to
  ``--dead-letter-topic`` by the decoding task itself before it ends, so before the batch
  can commit (at-least-once, like every non-transactional Kafka sink); routing them
  through the query instead would need a second read and decode of the batch, since the
  valid metrics go through a stateful dedup that dead letters must bypass;
* the valid metrics, deduplicated on their JSON source coordinates, reach one
  foreachBatch (:func:`write_batch`), which makes two idempotent writes:

  - CSV to ``<lake>/streaming/metrics_csv/batch_id=<id>/metric_name=<name>/``. A batch
    folder counts once it holds ``_SUCCESS`` (written by the output committer after all
    its files): readers (:func:`committed_csv_folders`) only read such folders, a
    replayed batch whose folder is complete is not written again, and an incomplete one
    (crash during the write) is overwritten;
  - the batch's per-minute totals per host and metric (window_start, count, sum, min,
    max) are *added* to ``metric_minute_aggregates`` in one MySQL transaction that also
    records the batch id in ``metric_minute_aggregates_batches`` (keyed by the query id
    Spark keeps in the checkpoint): a replayed batch finds its id there and adds nothing.

Replays are exact: the checkpoint replays a batch with the same offsets and the same dedup
state, so a replayed batch has the same rows, and each write above is skipped or repeated
whole. Together: exactly-once into the files and MySQL.

Why deduplicate: job A is at-least-once and republishes a replayed batch; a republished
record has the same source coordinates and event time. The dedup state is keyed with
the event time and bounded by the watermark, so a duplicate arriving later than the
watermark would not be recognised — a replay republishes within seconds, far inside it.
Events older than the watermark are dropped by the dedup, from the files and from MySQL
alike.

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
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    clear_stop_marker,
    run_until_stopped,
    trigger_options,
)
from spark_apps.streaming.kafka import read_stream
from spark_apps.streaming.kafka.sink import KafkaArrowBatchWriter
from spark_apps.streaming.metrics.transforms import (
    DEFAULT_WATERMARK,
    deduplicate_by_source,
    from_protobuf_sending_dead_letters,
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


def metric_rows(valid: DataFrame, watermark: str) -> DataFrame:
    """The query's rows: valid metrics deduplicated on their source coordinates, CSV columns."""
    return deduplicate_by_source(valid, watermark).select(*CSV_COLUMNS)


def batch_summary(batch: DataFrame) -> tuple[list[tuple], int]:
    """One Spark job over a micro-batch of :func:`metric_rows`: (per-minute totals, number of
    metrics). Totals are tuples in :data:`AGGREGATES_SCHEMA` order (window_start as a UTC
    wall-clock datetime, avg of the batch's rows)."""
    minute = F.date_trunc("minute", F.col("event_time")).cast("timestamp_ntz")
    rows = (batch.groupBy(minute.alias("window_start"), "host", "metric_name")
            .agg(F.count(F.lit(1)).alias("count"), F.sum("value").alias("sum"),
                 F.min("value").alias("min"), F.max("value").alias("max"))
            .collect())
    totals = [(r["window_start"], r["host"], r["metric_name"], r["count"], r["sum"], r["min"], r["max"],
               r["sum"] / r["count"]) for r in rows]
    return totals, sum(r["count"] for r in rows)


def write_batch(batch: DataFrame, batch_id: int, csv_root: str, db: ResultsDb | None,
                stream_id: str) -> int:
    """foreachBatch of the query: metrics to the batch's CSV folder (skipped when a previous
    attempt of the batch committed it), the batch's per-minute totals added to MySQL
    (skipped when already added; ``db`` None: no MySQL write). Returns the batch's metrics."""
    spark = batch.sparkSession
    batch = batch.persist()  # one evaluation of the stateful plan for both writes
    try:
        totals, metrics = batch_summary(batch)
        folder = csv_batch_uri(csv_root, batch_id)
        if metrics and not lake.exists(spark, lake.join(folder, COMMIT_MARKER)):
            batch.write.mode("overwrite").option("header", "true").partitionBy("metric_name").csv(folder)
        if db is not None:
            add_aggregates(db, stream_id, batch_id, totals)
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
) -> StreamingQuery:
    """Start job B's query (``startingOffsets`` only applies to a new checkpoint)."""
    options = {
        "startingOffsets": starting_offsets,
        "maxOffsetsPerTrigger": max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER,
    }
    csv_root = csv_uri(lake_uri)
    stream_ids: dict[str, str] = {}  # read once, at the first batch (Spark wrote it at start)

    def write(batch: DataFrame, batch_id: int) -> None:
        if "id" not in stream_ids:
            stream_ids["id"] = stream_id_of(batch.sparkSession, checkpoint)
        write_batch(batch, batch_id, csv_root, db, stream_ids["id"])

    dead_letters = KafkaArrowBatchWriter({"kafka.bootstrap.servers": bootstrap, "topic": dead_letter_topic})
    valid = from_protobuf_sending_dead_letters(read_stream(spark, bootstrap, source_topic, **options), dead_letters)
    return (
        metric_rows(valid, watermark)
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
    parser.add_argument("--watermark", default=DEFAULT_WATERMARK, help="how late an event may be, e.g. '2 minutes'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        clear_stop_marker(spark, args.status_uri)
    query = start_query(
        spark, args.bootstrap, args.lake, args.checkpoint, ResultsDb.from_env(),
        args.source_topic, args.dead_letter_topic, args.watermark, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets,
    )
    if args.status_uri:
        run_until_stopped(spark, [query], args.status_uri)
    else:
        query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
