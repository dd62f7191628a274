"""Benchmark of the turnstile streaming job on this machine (a private broker of the embedded stack's
kind, log on disk; local Spark with Spark's own Kafka connector; the local MariaDB).

    python bench/bench_turnstile.py --stations 100 --turnstiles-per-station 10 --days 7 --latency-markers 20

Prints markdown tables, one run:

* ceiling: a plain confluent-kafka consumer draining the topic of generated readings (median of
  ``--consumer-runs`` drains; bench_streaming's helpers);
* the job's sustained throughput: an availableNow run of both queries over the same backlog, from
  query start to end (in-process local[2] session after a warm-up run, so no JVM or Python-worker
  start-up is counted), readings/s and the ratio to the plain consumer (target >= 0.5);
* latency from produce to the window row in MySQL: with the job running (triggers back to back),
  ``--latency-markers`` readings of one turnstile, each opening a new window, are produced one at a
  time while ``--latency-rate`` generated readings/s load the topic; each marker's latency is the
  time until its window's row in ``turnstile_ridership`` counts it (p50, p99, max). The markers are
  stamped after the generated weeks, so they move the watermark: the background readings go through
  validation and the keyed state and leave as late readings (load on the same path, without making
  the markers late).

Nothing is asserted; numbers go into the README.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from bench.bench_streaming import create_topics, kafka_version, percentile, plain_consumer_drains  # noqa: E402
from include.platform import jvm, stack  # noqa: E402
from include.platform.scratch_db import create_scratch_db, drop_scratch_db  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.platform.stack import mariadb  # noqa: E402
from include.producers import turnstile as producer  # noqa: E402
from include.streaming.metrics_jobs import STREAM_CONF  # noqa: E402  (the supervisor's settings)

# bench_streaming's plain consumer reads partitions 0 and 1.
PARTITIONS = 2
MARKER_START = datetime(2016, 1, 4)
MARKER_TIMEOUT_S = 600  # after any generated week: marker windows are new windows


def spark_session(extra_conf: dict[str, str]):
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master("local[2]").appName("bench-turnstile")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.jars", jvm.spark_jars()))
    for key, value in {**STREAM_CONF, **extra_conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def run_available_now(spark, bootstrap: str, topics: dict[str, str], lake: str, checkpoint: str, db) -> float:
    from spark_apps.streaming.turnstile import job

    started = time.perf_counter()
    queries = job.start_queries(spark, bootstrap, lake, checkpoint, db, topics["source"], topics["dead"],
                                topics["late"], available_now=True)
    for query in queries:
        query.awaitTermination()
    return time.perf_counter() - started


def marker(index: int) -> producer.Reading:
    at = MARKER_START + index * producer.READING_INTERVAL
    fields = {"C/A": "Z999", "UNIT": "R999", "SCP": "00-00-00", "STATION": "BENCH MARKER", "LINENAME": "Z",
              "DIVISION": "IND", "DATE": at.strftime("%m/%d/%Y"), "TIME": at.strftime("%H:%M:%S"), "DESC": "REGULAR",
              "ENTRIES": str(1000 + index), "EXITS": str(2000 + index)}
    return producer.Reading(fields, at)


def window_counted(db, start: datetime) -> bool:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT intervals FROM turnstile_ridership WHERE station = 'BENCH MARKER' "
                            "AND window_start = %s", (start,))
            except Exception as error:
                if "doesn't exist" in str(error):
                    return False
                raise
            row = cur.fetchone()
            return bool(row and row[0] >= 1)
    finally:
        conn.close()


def latency_run(spark, bootstrap: str, topics: dict[str, str], lake: str, checkpoint: str, db, markers: int,
                rate: float, load: list[producer.Reading]) -> list[float]:
    from spark_apps.streaming.turnstile import job

    queries = job.start_queries(spark, bootstrap, lake, checkpoint, db, topics["source"], topics["dead"],
                                topics["late"], trigger_seconds=0)
    stop = threading.Event()

    def background():
        kafka = producer.make_producer(bootstrap)
        for reading in load:
            if stop.is_set():
                return
            kafka.produce(topics["source"], key=reading.event().key, value=reading.event().value)
            kafka.poll(0)
            time.sleep(1 / rate)
        kafka.flush(30)

    loader = threading.Thread(target=background, daemon=True)
    latencies = []
    try:
        time.sleep(20)  # the queries' first (empty) batches: the fresh topic is read from its start
        producer.publish([marker(0)], bootstrap, topics["source"])
        loader.start()
        for index in range(1, markers + 1):
            sent = time.perf_counter()
            producer.publish([marker(index)], bootstrap, topics["source"])
            start = marker(index).at.replace(hour=marker(index).at.hour // 4 * 4)
            while not window_counted(db, start):
                if time.perf_counter() - sent > MARKER_TIMEOUT_S:
                    raise TimeoutError(f"marker {index} not in MySQL after {MARKER_TIMEOUT_S} s")
                time.sleep(0.05)
            latencies.append(time.perf_counter() - sent)
    finally:
        stop.set()
        for query in queries:
            query.stop()
    return latencies


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--turnstiles-per-station", type=int, default=10)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--consumer-runs", type=int, default=3)
    parser.add_argument("--latency-markers", type=int, default=20)
    parser.add_argument("--latency-rate", type=float, default=200.0, help="background readings/s during the latency run")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    extra_conf = dict(item.split("=", 1) for item in args.spark_conf)

    workdir = Path(tempfile.mkdtemp(prefix="bench-turnstile-"))
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port())
    stack.start_service(cfg, kafka_service.service(cfg), dict(os.environ))
    bootstrap = f"127.0.0.1:{cfg.kafka_port}"
    mariadb.ensure_server(cfg)
    db = create_scratch_db(cfg.mysql_admin_url, "dp_bench")
    lake = (workdir / "lake").as_uri()
    try:
        readings = producer.generate_week(args.stations, args.turnstiles_per_station, args.days, seed=1,
                                          faults=producer.Faults(late=0.0))
        count = len(readings)
        topics = {name: f"bench-{name}" for name in ("source", "dead", "late", "warm", "warm-dead", "warm-late",
                                                      "live", "live-dead", "live-late")}
        create_topics(bootstrap, list(topics.values()), partitions=PARTITIONS)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        producer.publish(readings, bootstrap, topics["source"])
        produce_s = time.perf_counter() - started
        drains = sorted(plain_consumer_drains(bootstrap, topics["source"], count, args.consumer_runs))
        plain_s = drains[len(drains) // 2]

        spark = spark_session(extra_conf)
        producer.publish(readings[:500], bootstrap, topics["warm"])
        warm_topics = {"source": topics["warm"], "dead": topics["warm-dead"], "late": topics["warm-late"]}
        warm_s = run_available_now(spark, bootstrap, warm_topics, lake + "/warm", f"file://{workdir}/ckpt-warm", db)
        job_s = run_available_now(spark, bootstrap, {"source": topics["source"], "dead": topics["dead"],
                                                     "late": topics["late"]}, lake + "/run", f"file://{workdir}/ckpt", db)
        live_topics = {"source": topics["live"], "dead": topics["live-dead"], "late": topics["live-late"]}
        load = producer.generate_week(args.stations, args.turnstiles_per_station, args.days, seed=2,
                                      faults=producer.Faults(late=0.0))
        latencies = latency_run(spark, bootstrap, live_topics, lake + "/live", f"file://{workdir}/ckpt-live", db,
                                args.latency_markers, args.latency_rate, load)
        spark.stop()
        plain = count / plain_s
        print(f"\n{count:,} generated readings ({args.stations} stations x {args.turnstiles_per_station} turnstiles x "
              f"{args.days} days), broker {bootstrap} (Apache Kafka {kafka_version()}, log on disk), Spark local[2], "
              f"warm-up {warm_s:.1f} s, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n")
        print("| stage | s | readings/s | vs plain consumer (median) |")
        print("|---|---:|---:|---:|")
        for name, seconds in (("producer (idempotent, acks=all)", produce_s),
                              (f"plain confluent-kafka consumer (ceiling; median of {len(drains)})", plain_s),
                              ("turnstile job, both queries (availableNow)", job_s)):
            print(f"| {name} | {seconds:.2f} | {count / seconds:,.0f} | {count / seconds / plain:.2f} |")
        print("\n| markers | background readings/s | p50 latency s | p99 latency s | max s |")
        print("|---:|---:|---:|---:|---:|")
        print(f"| {len(latencies)} | {args.latency_rate:,.0f} | {percentile(sorted(latencies), 0.5):.2f} | "
              f"{percentile(sorted(latencies), 0.99):.2f} | {max(latencies):.2f} |")
        print(json.dumps({"latencies_s": [round(x, 2) for x in latencies]}))
    finally:
        drop_scratch_db(cfg.mysql_admin_url, db)
        stack.stop_service(cfg, "kafka")


if __name__ == "__main__":
    main()
