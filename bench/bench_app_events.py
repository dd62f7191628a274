"""Benchmark of the app-events pipeline on this machine: events/s from Kafka through the app-events
job against a plain consumer of the same topic as the ceiling, one run.

    python bench/bench_app_events.py --events 1000000

A private broker of the embedded stack's kind (Apache Kafka, one KRaft node) on free ports under a
temporary home, and a scratch MySQL database for the job's tables. The backlog: ``--events``
records of the real producer (include/producers/app_events.py: Zipf-skewed categories and users,
``--invalid-share`` broken, event times ``--spacing-ms`` apart ending now), produced before anything
is timed, to a topic with the partitions ``app-events`` is declared with. Prints one markdown
table:

* ceiling: one confluent-kafka consumer (every partition assigned, from offset 0) receiving the
  whole backlog and parsing each value as JSON (``json.loads``: the least a consumer that looks at
  the events does), in this process;
* the app-events job: its three queries (clean events to Parquet in a local lake, dead letters to
  Kafka and their counts to MySQL, per-category window stats to MySQL) as availableNow runs over
  the same backlog, in-process local[2] with the supervisor's streaming settings (no JVM start
  counted; a small warm-up run first); the time until all three had ended. Each query reads the
  topic itself, so the job reads the backlog three times.

The issue's target is >= 0.5 of the plain consumer: reported, not asserted. Nothing here is
asserted; the numbers go into the README.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from bench.bench_streaming import create_topics, kafka_version  # noqa: E402
from include.platform import jvm, stack  # noqa: E402
from include.platform.scratch_db import create_scratch_db, drop_scratch_db  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.platform.stack import mariadb  # noqa: E402
from include.platform.topics import TOPICS  # noqa: E402
from include.producers import app_events as producer  # noqa: E402
from include.streaming import app_events_jobs  # noqa: E402

PARTITIONS = next(t.partitions for t in TOPICS if t.name == app_events_jobs.SOURCE_TOPIC)
WARM_UP_EVENTS = 2000


def plain_consumer(bootstrap: str, topic: str, count: int) -> float:
    """Seconds for one consumer (every partition assigned) to receive and parse ``count`` records."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen = 0
    started = time.perf_counter()
    while seen < count:
        for message in consumer.consume(1000, timeout=1):
            if not message.error():
                try:
                    json.loads(message.value())
                except ValueError:
                    pass  # a broken record is seen all the same
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def run_job(spark, bootstrap: str, source: str, dead: str, lake: str, checkpoint: str, db,
            max_offsets: int | None) -> float:
    """The job's three queries as availableNow runs from the start of ``source``: seconds until all ended."""
    from spark_apps.streaming.app_events import job

    started = time.perf_counter()
    queries = job.start_queries(spark, bootstrap, lake, checkpoint, db, source, dead, available_now=True,
                                max_offsets_per_trigger=max_offsets)
    for query in queries:
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(f"{query.name} failed: {query.exception()}")
    return time.perf_counter() - started


def backlog(bootstrap: str, count: int, invalid_share: float, spacing_ms: int, seed: int) -> tuple[str, str, dict]:
    source, dead = f"bench-app-{uuid.uuid4().hex[:6]}", f"bench-app-dlq-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [source, dead], partitions=PARTITIONS)
    start_ms = int(time.time() * 1000) - count * spacing_ms
    report = producer.run_count(bootstrap, count, source, seed=seed, start_ms=start_ms, spacing_ms=spacing_ms,
                                invalid_share=invalid_share)
    assert report.delivered == count, report.as_dict()
    return source, dead, report.as_dict()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="backlog of the run")
    parser.add_argument("--invalid-share", type=float, default=0.01)
    parser.add_argument("--spacing-ms", type=int, default=1, help="event-time step between events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-offsets-per-trigger", type=int, help="default: the job's")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    from include.streaming.metrics_jobs import STREAM_CONF
    from spark_apps.streaming.app_events import tables

    workdir = Path(tempfile.mkdtemp(prefix="bench-app-events-"))
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port())
    stack.start_service(cfg, kafka_service.service(cfg), dict(os.environ))
    try:
        bootstrap = f"127.0.0.1:{cfg.kafka_port}"
        mariadb.ensure_server(cfg)
        db = create_scratch_db(cfg.mysql_admin_url, "dp_bench")
        try:
            load_before = os.getloadavg()[0]
            source, dead, report = backlog(bootstrap, args.events, args.invalid_share, args.spacing_ms, args.seed)
            plain_s = plain_consumer(bootstrap, source, args.events)
            print(f"plain consumer: {plain_s:.2f} s", flush=True)

            builder = (SparkSession.builder.master("local[2]").appName("bench-app-events")
                       .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
                       .config("spark.jars", jvm.spark_jars()))  # the pinned connector jars, as every job gets them
            for key, value in STREAM_CONF.items():  # the supervisor's streaming settings
                builder = builder.config(key, value)
            spark = builder.getOrCreate()
            try:
                results_db = db
                warm, warm_dead, _ = backlog(bootstrap, WARM_UP_EVENTS, args.invalid_share, args.spacing_ms, 2)
                run_job(spark, bootstrap, warm, warm_dead, (workdir / "lake-warm").as_uri(),
                        (workdir / "ckpt-warm").as_uri(), results_db, args.max_offsets_per_trigger)
                # The measured run's windows alone in the table: the views check below sums them.
                conn = results_db.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"DELETE FROM `{tables.STATS_TABLE}`")
                    conn.commit()
                finally:
                    conn.close()
                job_s = run_job(spark, bootstrap, source, dead, (workdir / "lake").as_uri(),
                                (workdir / "ckpt").as_uri(), results_db, args.max_offsets_per_trigger)
                print(f"app-events job: {job_s:.2f} s", flush=True)
                lake_rows = spark.read.parquet((workdir / "lake" / tables.CLEAN_DIR).as_uri()).count()
            finally:
                spark.stop()
            conn = results_db.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SELECT COALESCE(SUM(views), 0) FROM `{tables.STATS_TABLE}`")
                    views = int(cur.fetchone()[0])
            finally:
                conn.close()
        finally:
            drop_scratch_db(cfg.mysql_admin_url, db)
    finally:
        stack.stop_service(cfg, "kafka")

    n = args.events
    plain_rate, job_rate = n / plain_s, n / job_s
    print(f"\napp-events job, Kafka {kafka_version()} (one KRaft node, {PARTITIONS} partitions), Spark local[2] "
          f"in process, {os.cpu_count()} cores shared with other work, load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f}; {report['invalid']:,} of {n:,} events broken\n")
    print("| measurement | events | s | events/s | vs plain consumer |")
    print("|---|---:|---:|---:|---:|")
    print(f"| plain consumer (confluent-kafka, json.loads) - ceiling | {n:,} | {plain_s:.2f} | {plain_rate:,.0f} | 1.00 |")
    print(f"| app-events job (3 queries: Parquet, dead letters, window stats to MySQL) | {n:,} | {job_s:.2f} | "
          f"{job_rate:,.0f} | {job_rate / plain_rate:.2f} |")
    if lake_rows != report["valid"] or views != report["valid"]:
        print(f"\n(!) {lake_rows:,} lake rows and {views:,} views in MySQL, {report['valid']:,} valid events produced"
              " (views: late events are left out of the stats)")


if __name__ == "__main__":
    main()
