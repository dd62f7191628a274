"""Benchmark of the metrics streaming pipeline on this machine (the embedded stack's Apache Kafka
broker, log on disk, started privately on free ports; local Spark with Spark's own Kafka connector).

    python bench/bench_streaming.py --events 1000000 --latency-rates 1000 --latency-seconds 60

Prints a markdown table:

* ceiling: a plain confluent-kafka consumer draining the source topic (the broker's limit),
  median of ``--consumer-runs`` drains (the rate may be bimodal, see plain_consumer_drains);
* Spark's Kafka connector alone: the backlog read and discarded, and copied unchanged to
  another topic (the bound of any topic-to-topic job on this machine);
* Spark's CSV writer alone writing as many rows as job B writes, and job B's query without
  its outputs (read, decode, dedup): two parts of job B's cost;
* job A and job B sustained throughput: availableNow runs over the same backlog, time from
  query start to end (in-process local[2] session, so no JVM start-up is counted; a small
  warm-up run first starts Spark's Python workers, a one-off cost of a job's first batch
  that a long-running job does not pay again);
* end-to-end latency p50/p99, from the producer's timestamp to the moment the event's count
  is visible in MySQL (`metric_minute_aggregates`), with both jobs running as the supervisor
  runs them (spark-submit of the bundle, triggers as the supervisor sets them (back to back), `--trigger-seconds` to change,
  `--latency-master` local[1] by default) and
  the producer at a fixed rate. The jobs' output goes to `<workdir>/logs/`. Both get the
  pinned connector jars as the embedded stack gives them (SPARK_CONF_DIR/spark-defaults.conf).

Nothing here is asserted; numbers go into the README.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from include.platform import jvm, stack  # noqa: E402
from include.platform.build import compile_protos  # noqa: E402
from include.platform.scratch_db import create_scratch_db, drop_scratch_db  # noqa: E402
from include.platform.spark_jobs import SparkJob, build_bundle  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.platform.stack import mariadb  # noqa: E402
from include.platform.stack.environment import write_spark_conf  # noqa: E402
from include.producers import metrics as producer  # noqa: E402
from include.streaming.metrics_jobs import STREAM_CONF, TRIGGER_SECONDS  # noqa: E402  (the supervisor's settings)


def kafka_version() -> str:
    """The broker's release, from the name of its jar (``kafka_2.13-<version>.jar``)."""
    names = [p.name for p in jvm.classpath("kafka-broker") if p.name.startswith("kafka_2.13-")]
    return names[0].removeprefix("kafka_2.13-").removesuffix(".jar") if names else "?"


def create_topics(bootstrap: str, names: list[str], partitions: int = 2) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(30)


def produce_backlog(bootstrap: str, topic: str, count: int) -> float:
    rng = random.Random(1)
    events = producer.generate_events(count, rng, hosts=10, timestamp_ms=int(time.time() * 1000))
    started = time.perf_counter()
    report = producer.produce_events(producer.make_producer(bootstrap), topic, events)
    assert report.delivered == count, report
    return time.perf_counter() - started


def drain_with_plain_consumer(bootstrap: str, topic: str, count: int) -> float:
    """Seconds for one consumer (both partitions assigned) to receive ``count`` records."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
    seen = 0
    started = time.perf_counter()
    while seen < count:
        for message in consumer.consume(1000, timeout=1):
            if not message.error():
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def plain_consumer_drains(bootstrap: str, topic: str, count: int, runs: int) -> list[float]:
    """Seconds of ``runs`` drains of the same topic. The drain rate was bimodal here (the same
    topic drained at ~0.25 M or ~1 M records/s from one run to the next, with no other load:
    the broker, librdkafka's fetcher thread and the Python loop share two cores), so one
    drain is not a ceiling: the bench reports the median and the range."""
    return [drain_with_plain_consumer(bootstrap, topic, count) for _ in range(runs)]


def connector_alone(spark, bootstrap: str, source: str, copy_topic: str, checkpoints: str,
                    max_offsets: int | None) -> tuple[float, float]:
    """Seconds of Spark's Kafka connector without any of the pipeline's work, as availableNow
    runs over the same backlog: (read into Spark and discard, read and write unchanged to
    ``copy_topic``). Job A's throughput is bounded by the second."""
    from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_stream
    from spark_apps.streaming.metrics.json_to_protobuf import DEFAULT_MAX_OFFSETS_PER_TRIGGER

    options = {"startingOffsets": "earliest", "maxOffsetsPerTrigger": max_offsets or DEFAULT_MAX_OFFSETS_PER_TRIGGER}
    seconds = []
    for name, sink in (("read", None), ("copy", copy_topic)):
        records = read_kafka_stream(spark, bootstrap, source, **options)
        if sink is None:
            writer = records.writeStream.format("noop").option("checkpointLocation", f"{checkpoints}/{name}")
        else:
            writer = write_kafka_stream(records.select("key", "value"), bootstrap, f"{checkpoints}/{name}", sink)
        started = time.perf_counter()
        writer.trigger(availableNow=True).start().awaitTermination()
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1]


def csv_writer_alone(spark, lake: str, count: int) -> float:
    """Seconds of Spark's CSV writer alone writing ``count`` metric rows (job B's CSV columns,
    partitioned by metric name, two tasks) from a cached frame: part of job B's floor that
    no change to the pipeline removes."""
    from pyspark.sql import functions as F

    from spark_apps.streaming.metrics.protobuf_to_lake_and_mysql import CSV_COLUMNS
    from spark_apps.streaming.metrics.transforms import METRIC_NAMES

    names = F.array(*[F.lit(n) for n in METRIC_NAMES])
    rows = spark.range(0, count, 1, 2).select(
        F.concat(F.lit("server"), (F.col("id") % 10).cast("string")).alias("host"),
        F.lit("eu-west-1").alias("region"),
        (F.lit(1718876852088) + F.col("id")).alias("event_time_ms"),
        F.timestamp_millis(F.lit(1718876852088) + F.col("id")).alias("event_time"),
        (F.col("id") % 1000 / 10).alias("value"),
        F.lit("metric-message").alias("source_topic"),
        (F.col("id") % 2).cast("int").alias("source_partition"),
        F.col("id").alias("source_offset"),
        names[(F.col("id") % len(METRIC_NAMES)).cast("int")].alias("metric_name"),
    ).select(*CSV_COLUMNS).cache()
    rows.count()
    started = time.perf_counter()
    rows.write.mode("overwrite").option("header", "true").partitionBy("metric_name").csv(f"{lake}/csv-alone")
    elapsed = time.perf_counter() - started
    rows.unpersist()
    return elapsed


def job_b_input_side(spark, bootstrap: str, protobuf: str, checkpoint: str, max_offsets: int | None) -> float:
    """Seconds of job B's query without its outputs: the Protobuf topic read, decoded and
    deduplicated, then discarded (noop sink) - what job B costs before any file, MySQL or
    dead letter."""
    from spark_apps.streaming.kafka_io import read_kafka_stream
    from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b
    from spark_apps.streaming.metrics.transforms import DEFAULT_WATERMARK, decode_protobuf

    source = read_kafka_stream(spark, bootstrap, protobuf, startingOffsets="earliest",
                               maxOffsetsPerTrigger=max_offsets or job_b.DEFAULT_MAX_OFFSETS_PER_TRIGGER)
    rows = job_b.batch_rows(decode_protobuf(source), DEFAULT_WATERMARK)
    started = time.perf_counter()
    (rows.writeStream.format("noop").option("checkpointLocation", checkpoint)
     .trigger(availableNow=True).start().awaitTermination())
    return time.perf_counter() - started


def run_jobs(spark, bootstrap: str, source: str, protobuf: str, dead: str, lake: str, db,
             checkpoints: str, max_offsets: int | None) -> tuple[float, float, dict]:
    """Job A then job B as availableNow runs; (seconds A, seconds B, batches per query)."""
    from spark_apps.streaming.metrics import json_to_protobuf
    from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b

    started = time.perf_counter()
    query = json_to_protobuf.start_query(spark, bootstrap, f"file://{checkpoints}/a", source, protobuf, dead,
                                         available_now=True, max_offsets_per_trigger=max_offsets)
    query.awaitTermination()
    job_a_s = time.perf_counter() - started
    batches = {"A": len(query.recentProgress)}
    started = time.perf_counter()
    query = job_b.start_query(spark, bootstrap, lake, f"file://{checkpoints}/b", db, protobuf, dead,
                              available_now=True, max_offsets_per_trigger=max_offsets)
    query.awaitTermination()
    batches["B"] = len(query.recentProgress)
    job_b_s = time.perf_counter() - started
    return job_a_s, job_b_s, batches


def spark_throughput(bootstrap: str, source: str, protobuf: str, dead: str, copy: str, lake: str, db,
                     max_offsets: int | None, count: int, extra_conf: dict[str, str]) -> dict[str, float]:
    """Seconds per Spark run over the backlog of ``count`` events: connector read, connector
    copy, the CSV writer alone, job A, job B."""
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master("local[2]").appName("bench-streaming")
               .config("spark.sql.shuffle.partitions", STREAM_CONF["spark.sql.shuffle.partitions"])
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.jars", jvm.spark_jars()))  # the pinned connector jars, as every job gets them
    for key, value in extra_conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    checkpoints = tempfile.mkdtemp(prefix="bench-ckpt-")
    # Warm-up on a few events of separate topics: starts the Python workers and loads the
    # classes every job's first batch needs, so the timed runs measure sustained work.
    warm = [f"warm-{n}-{uuid.uuid4().hex[:6]}" for n in ("src", "pb", "dlq")]
    create_topics(bootstrap, warm)
    produce_backlog(bootstrap, warm[0], 100)
    started = time.perf_counter()
    run_jobs(spark, bootstrap, *warm, lake, db, f"{checkpoints}/warm", None)
    print(f"warm-up (first batches of both jobs, 100 events): {time.perf_counter() - started:.1f} s", flush=True)
    # The connector alone on the warm-up topic first, so its runs start warm too.
    connector_alone(spark, bootstrap, warm[0], warm[1], f"{checkpoints}/warm-connector", max_offsets)
    read_s, copy_s = connector_alone(spark, bootstrap, source, copy, f"{checkpoints}/connector", max_offsets)
    csv_writer_alone(spark, lake, 1000)  # warm-up
    csv_s = csv_writer_alone(spark, lake, count)
    job_a_s, job_b_s, batches = run_jobs(spark, bootstrap, source, protobuf, dead, lake, db,
                                         f"{checkpoints}/run", max_offsets)
    print(f"micro-batches: {batches}", flush=True)
    job_b_input_side(spark, bootstrap, warm[1], f"{checkpoints}/warm-b-input", max_offsets)
    b_input_s = job_b_input_side(spark, bootstrap, protobuf, f"{checkpoints}/b-input", max_offsets)
    spark.stop()
    return {"read": read_s, "copy": copy_s, "csv": csv_s, "A": job_a_s, "B": job_b_s, "B input": b_input_s}


def mysql_total(db) -> int:
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(`count`), 0) FROM metric_minute_aggregates")
            return int(cur.fetchone()[0])
    except Exception:
        return 0  # table not created yet
    finally:
        conn.close()


_PROGRESS_MARK = "Streaming query made progress: "
PHASES = ("triggerExecution", "addBatch", "commitOffsets", "walCommit", "latestOffset", "queryPlanning")


def percentile(values: list, q: float):
    """The value at quantile ``q`` of ``values`` (nearest rank below), "-" when there are none."""
    return sorted(values)[min(len(values) - 1, int(len(values) * q))] if values else "-"


def batch_phases(log: Path) -> dict[str, list[int]]:
    """Per-phase durations (ms) of a job's micro-batches with input, from the progress JSON
    Spark logs at INFO after each batch (the query's `durationMs`)."""
    text = log.read_text(errors="replace")
    decoder = json.JSONDecoder()
    phases: dict[str, list[int]] = {name: [] for name in PHASES}
    at = text.find(_PROGRESS_MARK)
    while at >= 0:
        progress, end = decoder.raw_decode(text, at + len(_PROGRESS_MARK))
        if progress.get("numInputRows"):
            for name in PHASES:
                phases[name].append(int(progress.get("durationMs", {}).get(name, 0)))
        at = text.find(_PROGRESS_MARK, end)
    return phases


def latency_run(bootstrap: str, db, rate: int, seconds: int, workdir: Path, spark_conf_dir: Path,
                trigger_seconds: str = TRIGGER_SECONDS, master: str = "local[1]", extra_conf: dict | None = None
                ) -> tuple[float, float, int, dict[str, Path]]:
    """p50/p99 seconds from produce time to visible-in-MySQL, with both jobs as spark-submit;
    also the jobs' log files by job name."""
    suffix = uuid.uuid4().hex[:6]
    source, protobuf, dead = f"lat-src-{suffix}", f"lat-pb-{suffix}", f"lat-dlq-{suffix}"
    create_topics(bootstrap, [source, protobuf, dead])
    apps = workdir / "build"
    lake = (workdir / f"lake-{suffix}").as_uri()
    common = {"spark.ui.enabled": "false", **STREAM_CONF, **(extra_conf or {})}
    jobs = [
        SparkJob("bench_a", "spark_apps/streaming/metrics/json_to_protobuf.py",
                 ["--bootstrap", bootstrap, "--source-topic", source, "--sink-topic", protobuf,
                  "--dead-letter-topic", dead, "--checkpoint", f"{lake}/ckpt/a", "--trigger-seconds", trigger_seconds],
                 common),
        SparkJob("bench_b", "spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py",
                 ["--bootstrap", bootstrap, "--source-topic", protobuf, "--dead-letter-topic", dead,
                  "--lake", lake, "--checkpoint", f"{lake}/ckpt/b", "--trigger-seconds", trigger_seconds],
                 common),
    ]
    env = {**os.environ, "SPARK_CONF_DIR": str(spark_conf_dir),
           "DP_RESULTS_DB_URL": f"mysql://{db.user}:{db.password}@{db.host}:{db.port}/{db.database}"}
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    log_files = {job.name: logs / f"{job.name}-{suffix}.log" for job in jobs}
    procs = []
    for job in jobs:
        with open(log_files[job.name], "wb") as log:
            procs.append(subprocess.Popen([spark_submit, "--master", master, *job.submit_args(apps.as_uri())],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        # Warm up until an event makes it all the way through (JVMs started, tables created).
        base = mysql_total(db)
        kafka = producer.make_producer(bootstrap)
        rng = random.Random(2)
        deadline = time.monotonic() + 300
        warm_up = 0
        while mysql_total(db) == base:
            if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
                raise RuntimeError(f"pipeline did not deliver a warm-up event (job logs in {logs})")
            producer.produce_events(kafka, source, producer.generate_events(10, rng, timestamp_ms=int(time.time() * 1000)))
            warm_up += 10
            time.sleep(2)
        # Every warm-up event counted before the measured run starts (else late ones would be
        # counted as measured events).
        while mysql_total(db) < base + warm_up and time.monotonic() < deadline:
            time.sleep(0.5)
        base = mysql_total(db)

        produced: list[tuple[float, int]] = []  # (time, cumulative events)
        visible: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                visible.append((time.time(), mysql_total(db) - base))
                time.sleep(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        total = 0
        start = time.time()
        for tick in range(seconds):
            now = time.time()
            events = producer.generate_events(rate, rng, timestamp_ms=int(now * 1000))
            producer.produce_events(kafka, source, events)
            total += rate
            produced.append((now, total))
            time.sleep(max(0.0, start + tick + 1 - time.time()))
        deadline = time.time() + 120
        while (visible[-1][1] if visible else 0) < total and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        poller.join()
        latencies = []
        j = 0
        for produced_at, cumulative in produced:
            while j < len(visible) and visible[j][1] < cumulative:
                j += 1
            if j == len(visible):
                break
            latencies.append(visible[j][0] - produced_at)
        seen = visible[-1][1] if visible else 0
        if not latencies:
            return float("nan"), float("nan"), seen, log_files
        return percentile(latencies, 0.5), percentile(latencies, 0.99), seen, log_files
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300000)
    parser.add_argument("--max-offsets-per-trigger", type=int,
                        help="for the throughput runs (default: the jobs' default)")
    parser.add_argument("--consumer-runs", type=int, default=5,
                        help="drains of the backlog by the plain consumer (the median is the ceiling)")
    parser.add_argument("--latency-rates", default="1000", help="comma list of events/s; empty for none")
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument("--trigger-seconds", default=TRIGGER_SECONDS,
                        help="trigger interval of both jobs in the latency run (default: the supervisor's)")
    parser.add_argument("--latency-master", default="local[1]",
                        help="Spark master of each job in the latency run: local[1] each (two JVMs on two "
                             "cores; the numbers in the README), or local[2] as the local supervisor submits them")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Spark setting for every run (a lever to measure, e.g. the state store provider)")
    args = parser.parse_args(argv)
    extra_conf = dict(item.split("=", 1) for item in args.spark_conf)

    compile_protos()
    workdir = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    build_bundle(workdir / "build")
    # A private broker of the embedded stack's kind (Apache Kafka, one KRaft node, log on disk).
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port())
    stack.start_service(cfg, kafka_service.service(cfg), dict(os.environ))
    spark_conf_dir = write_spark_conf(cfg)  # spark.jars for the spark-submits, as `dp up` writes it
    bootstrap = f"127.0.0.1:{cfg.kafka_port}"
    admin_url = cfg.mysql_admin_url  # DP_MYSQL_ADMIN_URL, default: root through the local socket
    mariadb.ensure_server(cfg)
    db = create_scratch_db(admin_url, "dp_bench")
    try:
        if not args.skip_throughput:
            source, protobuf, dead, copy = "bench-src", "bench-pb", "bench-dlq", "bench-copy"
            create_topics(bootstrap, [source, protobuf, dead, copy])
            load_before = os.getloadavg()[0]
            produce_s = produce_backlog(bootstrap, source, args.events)
            drains = sorted(plain_consumer_drains(bootstrap, source, args.events, args.consumer_runs))
            plain_s = drains[len(drains) // 2]
            spark_s = spark_throughput(bootstrap, source, protobuf, dead, copy, (workdir / "lake").as_uri(), db,
                                       args.max_offsets_per_trigger, args.events, extra_conf)
            plain = args.events / plain_s
            fastest, slowest = args.events / drains[0], args.events / drains[-1]
            rows = [
                ("producer (idempotent, acks=all)", produce_s),
                (f"plain confluent-kafka consumer (ceiling; median of {len(drains)} drains, "
                 f"{slowest:,.0f}-{fastest:,.0f}/s)", plain_s),
                ("Spark's Kafka connector alone: read, discard (noop sink)", spark_s["read"]),
                ("Spark's Kafka connector alone: copy topic to topic unchanged", spark_s["copy"]),
                ("Spark CSV writer alone (job B's files, from a cached frame, no Kafka)", spark_s["csv"]),
                ("job A: JSON -> Protobuf + DLQ", spark_s["A"]),
                ("job B: Protobuf -> CSV + MySQL aggregates", spark_s["B"]),
                ("job B's input side alone: read, decode, dedup (noop sink, no files, no MySQL)", spark_s["B input"]),
            ]
            print(f"\n{args.events:,} events, broker {bootstrap} (Apache Kafka {kafka_version()}, log on disk), "
                  f"Spark local[2] with Spark's Kafka connector{' ' + str(extra_conf) if extra_conf else ''}, "
                  f"DP_KAFKA_OPTIONS={os.environ.get('DP_KAFKA_OPTIONS', '')!r}, "
                  f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n")
            print("| stage | s | events/s | vs plain consumer (median) |")
            print("|---|---:|---:|---:|")
            for name, seconds in rows:
                rate = args.events / seconds
                print(f"| {name} | {seconds:.2f} | {rate:,.0f} | {rate / plain:.2f} |")
        rates = [int(r) for r in args.latency_rates.split(",") if r]
        if rates:
            print("\n| producer rate (events/s) | p50 latency s | p99 latency s | events seen in MySQL |")
            print("|---:|---:|---:|---:|")
        phases_by_run = []
        for rate in rates:
            p50, p99, seen, log_files = latency_run(bootstrap, db, rate, args.latency_seconds, workdir,
                                                    spark_conf_dir, args.trigger_seconds, args.latency_master,
                                                    extra_conf)
            print(f"| {rate:,} | {p50:.2f} | {p99:.2f} | {seen:,} |", flush=True)
            phases_by_run.append((rate, log_files))
        if phases_by_run:
            # Where the latency goes: the jobs' micro-batch phases (Spark's durationMs), median / p90.
            print("\n| rate | job | batches | " + " | ".join(f"{name} ms p50/p90" for name in PHASES) + " |")
            print("|---:|---|---:|" + "---:|" * len(PHASES))
            for rate, log_files in phases_by_run:
                for job, log in log_files.items():
                    phases = batch_phases(log)
                    cells = [f"{percentile(v, 0.5)} / {percentile(v, 0.9)}" for v in phases.values()]
                    print(f"| {rate:,} | {job} | {len(phases['triggerExecution'])} | " + " | ".join(cells) + " |")
    finally:
        stack.stop_service(cfg, "kafka")
        drop_scratch_db(admin_url, db)


if __name__ == "__main__":
    main()
