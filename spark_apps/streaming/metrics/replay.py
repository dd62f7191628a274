"""Kappa replay: rebuild a versioned per-minute aggregates table from the Kafka log.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/replay.py \\
        --bootstrap broker:9092 --source-topic metric-protobuf --version 2

Reprocessing from the log instead of a batch layer: Spark's Kafka source reads
``--source-topic`` as a batch from each partition's earliest retained offset to its end offset
at the start of the run (the topic's retention, include/platform/topics.py, is how far back a
replay reaches), through the current code of the pipeline - job B's decode
(:func:`transforms.decode_protobuf`, bad records left out) and deduplication on the source
coordinates - and version ``--version`` of the aggregation (:mod:`.minute_aggregates`). The
result replaces the whole versioned table at once (:func:`mysql.replace_rows`: staged, then one
transaction), so a rerun gives the same table and a failed run leaves the previous one. The
replay's coverage (end offsets, events, windows, first/last window) goes to
``kappa_replays``, which the DAG's comparison reads.
"""
from __future__ import annotations

import argparse
import json

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_apps.common.mysql import ResultsDb, replace_rows
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import client_options
from spark_apps.streaming.metrics.minute_aggregates import CURRENT_VERSION, KEYS, minute_aggregates, table_name
from spark_apps.streaming.metrics.transforms import decode_protobuf, deduplicate_by_source

APP_NAME = "metrics_kappa_replay"
REPLAYS_DDL = """CREATE TABLE IF NOT EXISTS kappa_replays (
  target_table  VARCHAR(128) NOT NULL,
  version       INT          NOT NULL,
  source_topic  VARCHAR(255) NOT NULL,
  end_offsets   TEXT         NOT NULL,
  events        BIGINT       NOT NULL,
  windows       BIGINT       NOT NULL,
  first_window  DATETIME     NULL,
  last_window   DATETIME     NULL,
  replayed_at   DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (target_table)
)"""


def replay(spark: SparkSession, bootstrap: str, source_topic: str, version: int, db: ResultsDb,
           table: str | None = None, kafka_options: str | dict | None = None) -> dict:
    """Replay ``source_topic`` into ``table`` (default: the version's) and record the run."""
    table = table or table_name(version)
    log = (spark.read.format("kafka").options(**client_options(bootstrap, kafka_options))
           .option("subscribe", source_topic).option("startingOffsets", "earliest")
           .option("endingOffsets", "latest").load()).persist()
    try:
        ends = {str(r["partition"]): int(r["end"]) + 1 for r in
                log.groupBy("partition").agg(F.max("offset").alias("end")).collect()}
        decoded = decode_protobuf(log)
        metrics = deduplicate_by_source(decoded.where(F.col("reason").isNull()))
        aggregates = minute_aggregates(metrics, version).persist()
        try:
            windows = replace_rows(aggregates, db, table, KEYS)
            summary = aggregates.agg(F.sum("count").alias("events"), F.min("window_start").alias("first"),
                                     F.max("window_start").alias("last")).first()
        finally:
            aggregates.unpersist()
    finally:
        log.unpersist()
    report = {"target_table": table, "version": version, "source_topic": source_topic, "end_offsets": ends,
              "events": int(summary["events"] or 0), "windows": windows,
              "first_window": summary["first"], "last_window": summary["last"]}
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(REPLAYS_DDL)
            cur.execute(
                "REPLACE INTO kappa_replays (target_table, version, source_topic, end_offsets, events, windows, "
                "first_window, last_window) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (table, version, source_topic, json.dumps(ends, sort_keys=True), report["events"], windows,
                 report["first_window"], report["last_window"]))
        conn.commit()
    finally:
        conn.close()
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="replay a metrics topic into a versioned aggregates table")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--kafka-options", help="JSON object of further Kafka client settings")
    parser.add_argument("--source-topic", default="metric-protobuf")
    parser.add_argument("--version", type=int, default=CURRENT_VERSION)
    parser.add_argument("--table", help="target table (default: the version's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    report = replay(spark, args.bootstrap, args.source_topic, args.version, ResultsDb.from_env(), args.table,
                    args.kafka_options)
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
