"""Benchmark of the WebSocket pipeline's two Avro jobs on this machine (a private broker of the
embedded stack's kind, log on disk; local[2] Spark with Spark's Kafka and Avro connectors; the
local MariaDB).

    python bench/bench_websocket.py --events 50000

Prints one markdown table, one run:

* plain WebSocket client (the ingest's ceiling): the platform's WebSocket service (its own
  process) sending ``--events`` messages as fast as it can to one websockets client that only
  receives them;
* ingest job (WebSocket -> Avro on ``websocket-events``): the same server, the job's query
  started (in-process session, after a warm-up run) with back-to-back triggers; from the query's
  start (the server sends from the reader's connection on) until the broker holds every message;
* plain confluent-kafka consumer (the thread-stats job's ceiling): median of ``--consumer-runs``
  drains of ``websocket-events`` (bench_streaming's helper);
* thread-stats job (Avro -> per-thread windows in MySQL + JSON topic): an availableNow run of both
  its queries over the same topic, from start to end.

Nothing is asserted; numbers go into the README.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from bench.bench_streaming import create_topics, kafka_version, plain_consumer_drains  # noqa: E402
from include.platform import jvm, stack  # noqa: E402
from include.platform.scratch_db import create_scratch_db, drop_scratch_db  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.platform.stack import mariadb  # noqa: E402
from include.streaming.metrics_jobs import STREAM_CONF  # noqa: E402  (the supervisor's settings)

PARTITIONS = 2  # bench_streaming's plain consumer reads partitions 0 and 1


def server(port: int, count: int) -> subprocess.Popen:
    """The platform's WebSocket service, at full speed, from its first client on."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from include.platform.stack.websocket import main; "
                             "sys.exit(main(sys.argv[1:]))", "--port", str(port), "--interval", "0", "--seed", "1",
                             "--count", str(count), "--wait-for-client"], env=env)
    deadline = time.monotonic() + 30
    while not stack.port_open(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("WebSocket server did not start")
        time.sleep(0.1)
    return proc


def plain_client(count: int) -> float:
    from websockets.sync.client import connect

    port = stack.free_port()
    proc = server(port, count)
    try:
        with connect(f"ws://127.0.0.1:{port}", max_size=2**20) as ws:
            first = ws.recv(timeout=30)
            started = time.perf_counter()
            for _ in range(count - 1):
                ws.recv(timeout=30)
            assert first
            return time.perf_counter() - started
    finally:
        proc.wait(30)


def end_offsets(bootstrap: str, topic: str) -> int:
    from include.streaming.health import end_offsets as ends

    return sum(ends(bootstrap, [(topic, p) for p in range(PARTITIONS)]).values())


def ingest_run(spark, bootstrap: str, topics: dict, checkpoint: str, db, count: int) -> float:
    from spark_apps.streaming.websocket import ingest

    port = stack.free_port()
    proc = server(port, count)
    before = end_offsets(bootstrap, topics["events"])
    started = time.perf_counter()
    query = ingest.start_query(spark, f"ws://127.0.0.1:{port}", bootstrap, checkpoint, db, topics["events"],
                               topics["dead"], trigger_seconds=0)
    try:
        while end_offsets(bootstrap, topics["events"]) - before < count:
            if query.exception() is not None:
                raise RuntimeError(query.exception())
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        query.stop()
        proc.wait(30)


def stats_run(spark, bootstrap: str, topics: dict, checkpoint: str, db) -> float:
    from spark_apps.streaming.websocket import thread_stats

    started = time.perf_counter()
    for query in thread_stats.start_queries(spark, bootstrap, checkpoint, db, topics["events"], topics["stats"],
                                            topics["dead"], available_now=True):
        query.awaitTermination()
    return time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--consumer-runs", type=int, default=3)
    args = parser.parse_args(argv)
    from pyspark.sql import SparkSession

    workdir = Path(tempfile.mkdtemp(prefix="bench-websocket-"))
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port())
    stack.start_service(cfg, kafka_service.service(cfg), dict(os.environ))
    bootstrap = f"127.0.0.1:{cfg.kafka_port}"
    mariadb.ensure_server(cfg)
    db = create_scratch_db(cfg.mysql_admin_url, "dp_bench")
    try:
        topics = {name: f"bench-{name}" for name in ("events", "dead", "stats", "warm", "warm-dead", "warm-stats")}
        create_topics(bootstrap, list(topics.values()), partitions=PARTITIONS)
        load_before = os.getloadavg()[0]
        client_s = plain_client(args.events)
        builder = (SparkSession.builder.master("local[2]").appName("bench-websocket").config("spark.ui.enabled", "false")
                   .config("spark.sql.session.timeZone", "UTC").config("spark.jars", jvm.spark_jars()))
        for key, value in STREAM_CONF.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        warm = {"events": topics["warm"], "dead": topics["warm-dead"], "stats": topics["warm-stats"]}
        ingest_run(spark, bootstrap, warm, f"file://{workdir}/ckpt-warm-ingest", db, 2000)
        stats_run(spark, bootstrap, warm, f"file://{workdir}/ckpt-warm-stats", db)
        ingest_s = ingest_run(spark, bootstrap, topics, f"file://{workdir}/ckpt-ingest", db, args.events)
        in_topic = end_offsets(bootstrap, topics["events"])
        drains = sorted(plain_consumer_drains(bootstrap, topics["events"], in_topic, args.consumer_runs))
        plain_s = drains[len(drains) // 2]
        stats_s = stats_run(spark, bootstrap, topics, f"file://{workdir}/ckpt-stats", db)
        spark.stop()
        n = args.events
        print(f"\n{n:,} WebSocket messages ({in_topic:,} Avro events in the topic), broker {bootstrap} "
              f"(Apache Kafka {kafka_version()}, log on disk, {PARTITIONS} partitions), Spark local[2], "
              f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n")
        print("| stage | s | events/s | vs its ceiling |")
        print("|---|---:|---:|---:|")
        print(f"| plain WebSocket client (ingest ceiling) | {client_s:.2f} | {n / client_s:,.0f} | 1.00 |")
        print(f"| ingest job: WebSocket -> Avro (to_avro) + dead letters + seq accounting | {ingest_s:.2f} | "
              f"{n / ingest_s:,.0f} | {client_s / ingest_s:.2f} |")
        print(f"| plain confluent-kafka consumer (thread-stats ceiling; median of {len(drains)}) | {plain_s:.2f} | "
              f"{in_topic / plain_s:,.0f} | 1.00 |")
        print(f"| thread-stats job: from_avro, dedup, windows -> MySQL + JSON (availableNow) | {stats_s:.2f} | "
              f"{in_topic / stats_s:,.0f} | {plain_s / stats_s:.2f} |")
    finally:
        drop_scratch_db(cfg.mysql_admin_url, db)
        stack.stop_service(cfg, "kafka")


if __name__ == "__main__":
    main()
