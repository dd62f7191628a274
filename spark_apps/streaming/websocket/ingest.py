"""WebSocket ingest job: the platform's WebSocket service -> ``websocket-events`` as Avro.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/websocket/ingest.py \\
        --url ws://127.0.0.1:8765 --bootstrap broker:9092 --checkpoint s3://lake/streaming/_checkpoints/websocket_ingest

One query over the WebSocket (:mod:`.source`, a streaming Python Data Source: Spark has no
WebSocket connector). Each micro-batch's messages are checked in Spark SQL
(:func:`transforms.parse_messages`) into one frame; its foreachBatch (:func:`write_batch`)
publishes

- the valid samples to ``--events-topic`` as Avro (``to_avro`` with
  ``schemas/websocket_event.v1.avsc``, the version in the ``avro.schema`` header), keyed by
  threadname, through Spark's Kafka sink (:func:`kafka_io.write_kafka_batch`);
- the bad ones to ``--dead-letter-topic`` as JSON with their reason and raw text;
- and, with a results DB, the batch's sequence-number accounting to MySQL: per server run the
  first and last seq, messages received (valid or not, when their run_id and seq are readable),
  seqs missing (never received: sent while the job was down or reconnecting, or so broken that
  their seq cannot be read) and repeated (:func:`transforms.count_gaps`), in one transaction with
  the batch id in ``websocket_ingest_batches`` so a replayed batch counts nothing twice. A
  batch with missing seqs is also logged as a warning.

Guarantees: what the reader received is published at least once (Spark's Kafka sink is not
transactional: a batch replayed after a failure is published again; the thread-stats job
drops the repeats by (run_id, seq)). What the server sent while no reader was connected is
lost, and so is a batch the driver received but had not committed when it died: a WebSocket
cannot be re-read (README "WebSocket pipeline"). The counts make both visible.
"""
from __future__ import annotations

import argparse
import json
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import write_kafka_batch
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_restarting_slow_python_starts,
    trigger_options,
)
from spark_apps.streaming.websocket import source
from spark_apps.streaming.websocket.transforms import (
    count_gaps,
    dead_letter_records,
    event_records,
    parse_messages,
    seq_summary,
    valid_events,
)

log = logging.getLogger(__name__)
QUERY_NAME = "websocket_ingest"
EVENTS_TOPIC = "websocket-events"
DEAD_LETTER_TOPIC = "websocket-dead-letter"
# Kept equal to include/sql/results_schema.sql (tests/spark_apps/streaming/websocket_pipeline checks it):
# the job creates them itself too, for a database the bootstrap has not seen.
RUNS_DDL = """CREATE TABLE IF NOT EXISTS websocket_ingest_runs (
  run_id        VARCHAR(64) NOT NULL,
  first_seq     BIGINT      NOT NULL,
  last_seq      BIGINT      NOT NULL,
  received      BIGINT      NOT NULL,
  missing       BIGINT      NOT NULL,
  repeated      BIGINT      NOT NULL,
  updated_at    DATETIME    NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (run_id)
)"""
BATCHES_DDL = """CREATE TABLE IF NOT EXISTS websocket_ingest_batches (
  stream_id     VARCHAR(64) NOT NULL,
  batch_id      BIGINT      NOT NULL,
  events        BIGINT      NOT NULL,
  dead_letters  BIGINT      NOT NULL,
  missing       BIGINT      NOT NULL,
  recorded_at   DATETIME    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (stream_id, batch_id)
)"""
BATCHES_KEPT = 10_000


def record_batch(db: ResultsDb, stream_id: str, batch_id: int, seqs_by_run: dict[str, list[int]],
                 events: int, dead_letters: int) -> int | None:
    """Add one batch's seq accounting to MySQL once (the batch id ledger); returns the seqs
    found missing, or None for a batch already recorded."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(RUNS_DDL)
            cur.execute(BATCHES_DDL)
        conn.commit()
        with conn.cursor() as cur:
            if not cur.execute("INSERT IGNORE INTO websocket_ingest_batches (stream_id, batch_id, events, dead_letters, "
                               "missing) VALUES (%s, %s, %s, %s, 0)", (stream_id, int(batch_id), events, dead_letters)):
                conn.rollback()
                return None
            total_missing = 0
            for run_id, seqs in sorted(seqs_by_run.items()):
                cur.execute("SELECT last_seq FROM websocket_ingest_runs WHERE run_id = %s FOR UPDATE", (run_id,))
                row = cur.fetchone()
                missing, repeated, last = count_gaps(seqs, row[0] if row else None)
                total_missing += missing
                cur.execute(
                    "INSERT INTO websocket_ingest_runs (run_id, first_seq, last_seq, received, missing, repeated) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE last_seq = GREATEST(last_seq, VALUES(last_seq)), "
                    "received = received + VALUES(received), missing = missing + VALUES(missing), "
                    "repeated = repeated + VALUES(repeated)",
                    (run_id, seqs[0], last, len(seqs), missing, repeated))
            cur.execute("UPDATE websocket_ingest_batches SET missing = %s WHERE stream_id = %s AND batch_id = %s",
                        (total_missing, stream_id, int(batch_id)))
            cur.execute("DELETE FROM websocket_ingest_batches WHERE stream_id = %s AND batch_id < %s",
                        (stream_id, int(batch_id) - BATCHES_KEPT))
        conn.commit()
        return total_missing
    finally:
        conn.close()


def write_batch(batch: DataFrame, batch_id: int, publish, db: ResultsDb | None, stream_id: str, url: str = "") -> dict:
    """foreachBatch of the query over :func:`parse_messages` rows: events and dead letters to
    Kafka (``publish(frame, role)``, role ``events`` or ``dead_letters``; it must raise unless
    all were delivered), then the seq accounting to MySQL. Returns the batch's counts."""
    batch = batch.persist()
    try:
        counts = {r["valid"]: r["n"] for r in batch.groupBy(F.col("reason").isNull().alias("valid"))
                  .agg(F.count(F.lit(1)).alias("n")).collect()}
        events, dead = counts.get(True, 0), counts.get(False, 0)
        if events:
            publish(event_records(valid_events(batch)), "events")
        if dead:
            publish(dead_letter_records(batch, url), "dead_letters")
        missing = None
        if db is not None and (events or dead):
            # Every message whose run_id and seq are readable counts as received, a dead letter
            # too: only a seq that never arrived (or arrived unreadable) is missing.
            readable = batch.where(F.col("run_id").isNotNull() & F.col("seq").isNotNull())
            seqs = {r["run_id"]: list(r["seqs"]) for r in seq_summary(readable).collect()}
            missing = record_batch(db, stream_id, batch_id, seqs, events, dead)
            if missing:
                log.warning("batch %s: %s WebSocket messages missing (sequence gaps)", batch_id, missing)
        return {"events": events, "dead_letters": dead, "missing": missing}
    finally:
        batch.unpersist()


def start_query(spark: SparkSession, url: str, bootstrap: str, checkpoint: str, db: ResultsDb | None,
                events_topic: str = EVENTS_TOPIC, dead_letter_topic: str = DEAD_LETTER_TOPIC,
                trigger_seconds: float = 5, available_now: bool = False, max_messages_per_batch: int | None = None,
                kafka_options: str | dict | None = None) -> StreamingQuery:
    source.register(spark)
    reader = spark.readStream.format(source.NAME).option("url", url)
    if max_messages_per_batch:
        reader = reader.option("maxMessagesPerBatch", str(max_messages_per_batch))
    parsed = parse_messages(reader.load())
    topics = {"events": events_topic, "dead_letters": dead_letter_topic}
    stream_ids: dict[str, str] = {}

    def publish(frame: DataFrame, role: str) -> None:
        write_kafka_batch(frame, bootstrap, topics[role], kafka_options)

    def write(batch: DataFrame, batch_id: int) -> None:
        if "id" not in stream_ids:
            stream_ids["id"] = json.loads(lake.read_text(batch.sparkSession, lake.join(checkpoint, "metadata")))["id"]
        write_batch(batch, batch_id, publish, db, stream_ids["id"], url)

    if available_now:
        raise ValueError("a WebSocket has no end to read to: run the ingest job with a processing-time trigger")
    return (parsed.writeStream.queryName(QUERY_NAME).foreachBatch(write)
            .option("checkpointLocation", checkpoint)
            .trigger(**trigger_options(False, trigger_seconds)).start())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="WebSocket -> Kafka websocket-events (Avro) + dead letters")
    add_streaming_arguments(parser, trigger_seconds=5)
    parser.add_argument("--url", required=True, help="the WebSocket, e.g. ws://127.0.0.1:8765")
    parser.add_argument("--events-topic", default=EVENTS_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--max-messages-per-batch", type=int)
    parser.add_argument("--no-results-db", action="store_true", help="do not record seq gaps in MySQL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(QUERY_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    db = None if args.no_results_db else ResultsDb.from_env()

    def start() -> StreamingQuery:
        return start_query(spark, args.url, args.bootstrap, args.checkpoint, db, args.events_topic,
                           args.dead_letter_topic, args.trigger_seconds, args.available_now,
                           args.max_messages_per_batch, args.kafka_options)

    run_restarting_slow_python_starts(spark, start, args.status_uri)


if __name__ == "__main__":
    main()
