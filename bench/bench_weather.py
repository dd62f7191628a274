"""Benchmark of the weather pipeline on this machine: observations/s from Kafka into Cassandra
through the weather job, and produce-to-row latency, against Cassandra's own write rate.

    python bench/bench_weather.py --observations 200000 --latency-rates 100,1000 --latency-seconds 60

A private broker and Cassandra node of the embedded stack's kind (Apache Kafka, one KRaft node;
Apache Cassandra 5.0, one node, 512 MiB heap), started on free ports under a temporary home, and
a scratch MySQL database for the hourly aggregates, as bench/bench_streaming.py does (its
helpers are imported from there). Every observation is a recorded real OpenWeatherMap response
(``../shared/data/openweather_responses/``) with a city id out of ``--cities`` and a restamped
``dt`` (the producer's :class:`include.producers.weather.Restamper`: unique per city), so none is
deduplicated away. Prints one markdown table:

* ceiling: a plain driver loop, the same prepared INSERT (``weather.observations``' statement,
  idempotent, LOCAL_QUORUM) over the same rows (computed by the job's own transforms from the
  backlog), ``execute_concurrent_with_args`` with as many requests in flight as one job task
  has (64), in 1 and in 2 processes (as many as the job's local[2] writing tasks), after an
  untimed warm-up of the node; the faster is the ceiling;
* the weather job's throughput: both queries of ``spark_apps/streaming/weather/job.py``
  (observations to Cassandra; hourly aggregates to Cassandra and MySQL) as availableNow runs over
  the same backlog, in-process local[2] (no JVM start counted; a small warm-up run first starts
  Spark's Python workers and their Cassandra sessions): the time until the observations query
  ended, and until both had;
* latency produce-to-row at each of ``--latency-rates`` observations/s for ``--latency-seconds``:
  the job spark-submitted as the supervisor submits it (the SparkJob of
  include/streaming/weather_jobs.py, the supervisor's trigger unless ``--trigger-seconds``), the
  producer sending a tenth of the rate every 100 ms; for ``--samples-per-second`` observations a
  second, the time from just before their produce call to the end of the first point read
  (partition key and clustering key, every 50 ms) that finds their row in Cassandra; p50/p99.

The issue's target is >= 0.5 of the plain driver loop: reported, not asserted.
Nothing here is asserted; numbers go into the README.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from bench.bench_streaming import create_topics, kafka_version, percentile  # noqa: E402
from include.cassandra.schema import ensure_schema  # noqa: E402
from include.platform import jvm, stack  # noqa: E402
from include.platform import settings as platform_settings  # noqa: E402
from include.platform.scratch_db import create_scratch_db, drop_scratch_db  # noqa: E402
from include.platform.spark_jobs import build_bundle  # noqa: E402
from include.platform.stack import cassandra as cassandra_service  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.platform.stack import mariadb  # noqa: E402
from include.platform.stack.environment import write_spark_conf  # noqa: E402
from include.platform.topics import TOPICS  # noqa: E402
from include.producers import weather as weather_producer  # noqa: E402
from include.producers.metrics import make_producer, produce_events  # noqa: E402
from include.streaming import weather_jobs  # noqa: E402
from spark_apps.common import cassandra  # noqa: E402
from spark_apps.streaming.weather import tables  # noqa: E402

REPLICATION = {"class": "SimpleStrategy", "replication_factor": 1}
PARTITIONS = next(t.partitions for t in TOPICS if t.name == weather_jobs.SOURCE_TOPIC)
FIRST_CITY_ID = 9_000_000  # the bench's cities: no real OpenWeatherMap id is this large
POLL_INTERVAL_S = 0.05
WARM_UP_ROWS = 2000
LATENCY_DRAIN_S = 180


def cassandra_version() -> str:
    """The node's release, from the name of its jar (``cassandra-all-<version>.jar``)."""
    names = [p.name for p in jvm.classpath("cassandra") if p.name.startswith("cassandra-all-")]
    return names[0].removeprefix("cassandra-all-").removesuffix(".jar") if names else "?"


class Observations:
    """Recorded responses as new observations: city ids cycling over ``cities``, ``dt`` restamped
    from ``now()`` (at least one second after the city's previous observation)."""

    def __init__(self, cities: int, now=time.time):
        self.lines = weather_producer.load_recorded()
        self.cities = cities
        self.restamp = weather_producer.Restamper(now)
        self.sent = 0

    def next(self) -> tuple[weather_producer.Event, tuple[int, int]]:
        """The next record and its observation's (city id, dt)."""
        city = FIRST_CITY_ID + self.sent % self.cities
        line = self.lines[self.sent % len(self.lines)]
        self.sent += 1
        key = {}

        def restamp(body: dict) -> dict:
            body["id"], body["name"] = city, f"bench city {city}"
            body = self.restamp(body)
            key["observation"] = (city, body["dt"])
            return body

        event = weather_producer.replay_event(line, restamp)
        return event, key["observation"]


def create_keyspace(config: cassandra.CassandraConfig, name: str) -> str:
    cluster, session = cassandra.connect(config, request_timeout=120)
    try:
        ensure_schema(session, REPLICATION, {name: tables.table_statements(name)})
    finally:
        cluster.shutdown()
    return name


def count_rows(config: cassandra.CassandraConfig, keyspace: str, table: str = tables.OBSERVATIONS_TABLE) -> int:
    cluster, session = cassandra.connect(config, request_timeout=300)
    try:
        return session.execute(f"SELECT COUNT(*) FROM {keyspace}.{table}").one()[0]
    finally:
        cluster.shutdown()


# --- the ceiling: a plain driver loop ---------------------------------------------------------


def observation_rows(spark, bootstrap: str, topic: str) -> list[tuple]:
    """The backlog's observations as the job writes them (its own transforms over a batch read
    of the topic): tuples in the INSERT's order."""
    from spark_apps.streaming.weather import transforms

    records = spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic) \
        .option("startingOffsets", "earliest").load()
    rows = transforms.cassandra_observation_values(transforms.deduplicate_batch(transforms.observations(
        transforms.checked(records))))
    return [tuple(r) for r in rows.collect()]


def _plain_writer(config, cql: str, rows: list[tuple], concurrency: int, ready, start, ends) -> None:
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import UNSET_VALUE

    cluster, session = cassandra.connect(config)
    try:
        statement = session.prepare(cql)
        statement.is_idempotent = True
        values = [tuple(UNSET_VALUE if v is None else v for v in row) for row in rows]  # as the job binds them
        ready.put(os.getpid())
        start.wait()
        results = execute_concurrent_with_args(session, statement, values, concurrency=concurrency,
                                               raise_on_first_error=True)
        assert all(r.success for r in results)
        ends.put(time.time())
    finally:
        cluster.shutdown()


def plain_driver_loop(config, keyspace: str, rows: list[tuple], processes: int,
                      concurrency: int = cassandra.DEFAULT_CONCURRENCY) -> float:
    """Seconds for ``processes`` processes (spawned, each its own session and share of the rows)
    to upsert ``rows``, from the moment all are connected and prepared to the last one's end."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running a JVM gateway's threads
    ready, start, ends = context.Queue(), context.Event(), context.Queue()
    cql = tables.observations_insert(keyspace)
    workers = [context.Process(target=_plain_writer,
                               args=(config, cql, rows[i::processes], concurrency, ready, start, ends))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=300)  # connected, prepared, values bound
    started = time.time()
    start.set()
    finished = [ends.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0, f"a plain writer failed ({worker.exitcode})"
    return max(finished) - started


# --- the job's throughput ---------------------------------------------------------------------


def run_job(spark, bootstrap: str, source: str, dead: str, config, keyspace: str, db, checkpoint: str,
            max_offsets: int | None) -> tuple[float, float]:
    """Both queries of the job as availableNow runs from the start of ``source``: seconds until
    the observations query ended, until both had."""
    from spark_apps.streaming.weather import job

    started = time.perf_counter()
    queries = job.start_queries(spark, bootstrap, checkpoint, config, db, keyspace, source, dead,
                                available_now=True, max_offsets_per_trigger=max_offsets)
    ended = {}
    while len(ended) < len(queries):
        for query in queries:
            if query.name not in ended and not query.isActive:
                ended[query.name] = time.perf_counter() - started
                if query.exception() is not None:
                    raise RuntimeError(f"{query.name} failed: {query.exception()}")
        time.sleep(0.05)
    return ended[job.OBSERVATIONS_QUERY], max(ended.values())


def throughput(bootstrap: str, config, db, count: int, cities: int, processes: list[int],
               max_offsets: int | None) -> dict[str, float]:
    from pyspark.sql import SparkSession

    from include.streaming.metrics_jobs import STREAM_CONF

    # The backlog: ``count`` observations, an hour old, produced before anything is timed.
    source, dead = f"bench-weather-{uuid.uuid4().hex[:6]}", f"bench-weather-dlq-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [source, dead], partitions=PARTITIONS)
    observations = Observations(cities, now=lambda: time.time() - 3600)
    producer = make_producer(bootstrap)
    report = produce_events(producer, source, (observations.next()[0] for _ in range(count)))
    assert report.delivered == count, report

    spark = (SparkSession.builder.master("local[2]").appName("bench-weather")
             .config("spark.sql.shuffle.partitions", STREAM_CONF["spark.sql.shuffle.partitions"])
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.jars", jvm.spark_jars())  # the pinned connector jars, as every job gets them
             .getOrCreate())
    checkpoints = tempfile.mkdtemp(prefix="bench-weather-ckpt-")
    try:
        rows = observation_rows(spark, bootstrap, source)
        assert len(rows) == count, f"{len(rows)} observations from {count} records"
        # Warm-up of the node (a fresh JVM: its first writes run interpreted), untimed, as the job gets one.
        plain_driver_loop(config, create_keyspace(config, "bench_plain_warm"), rows[:WARM_UP_ROWS], 1)
        seconds = {}
        for n in processes:
            seconds[f"plain {n}"] = plain_driver_loop(config, create_keyspace(config, f"bench_plain_{n}"), rows, n)
            print(f"plain driver loop, {n} process(es): {seconds[f'plain {n}']:.2f} s", flush=True)

        # Warm-up: a few observations of their own topic and keyspace through the whole job.
        warm, warm_dead = f"bench-warm-{uuid.uuid4().hex[:6]}", f"bench-warm-dlq-{uuid.uuid4().hex[:6]}"
        create_topics(bootstrap, [warm, warm_dead], partitions=PARTITIONS)
        produce_events(producer, warm, (observations.next()[0] for _ in range(200)))
        run_job(spark, bootstrap, warm, warm_dead, config, create_keyspace(config, "bench_warm"), db,
                f"file://{checkpoints}/warm", max_offsets)

        keyspace = create_keyspace(config, "bench_job")
        seconds["job observations"], seconds["job both"] = run_job(
            spark, bootstrap, source, dead, config, keyspace, db, f"file://{checkpoints}/run", max_offsets)
        seconds["job rows"] = count_rows(config, keyspace)
        return seconds
    finally:
        spark.stop()


# --- latency ----------------------------------------------------------------------------------


class RowWatcher:
    """Point reads, every POLL_INTERVAL_S, of the observations still awaited: the time each
    row was first seen (the end of the read that found it)."""

    def __init__(self, config, keyspace: str):
        self.cluster, self.session = cassandra.connect(config)
        self.select = self.session.prepare(f"SELECT observed_at FROM {keyspace}.{tables.OBSERVATIONS_TABLE} "
                                           "WHERE city_id = ? AND day = ? AND observed_at = ?")
        self.awaited: dict[tuple[int, int], float] = {}  # (city, dt) -> produced at
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def expect(self, observation: tuple[int, int], produced_at: float) -> None:
        with self.lock:
            self.awaited[observation] = produced_at

    def pending(self) -> int:
        with self.lock:
            return len(self.awaited)

    def _run(self) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        while not self.stopped.is_set():
            with self.lock:
                keys = list(self.awaited)
            if keys:
                params = [(city, datetime.fromtimestamp(dt, timezone.utc).date(), dt * 1000) for city, dt in keys]
                results = execute_concurrent_with_args(self.session, self.select, params, concurrency=32,
                                                       raise_on_first_error=False)
                seen_at = time.time()
                with self.lock:
                    for key, result in zip(keys, results):
                        if result.success and result.result_or_exc.one() is not None:
                            self.latencies.append(seen_at - self.awaited.pop(key))
            time.sleep(POLL_INTERVAL_S)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.cluster.shutdown()


def latency_runs(bootstrap: str, config, db, rates: list[int], seconds: int, samples_per_second: int, cities: int,
                 workdir: Path, spark_conf_dir: Path, trigger_seconds: str, master: str) -> list[dict]:
    """The job spark-submitted once; a run per rate (each after the previous one drained)."""
    suffix = uuid.uuid4().hex[:6]
    source, dead = f"lat-weather-{suffix}", f"lat-weather-dlq-{suffix}"
    create_topics(bootstrap, [source, dead], partitions=PARTITIONS)
    keyspace = create_keyspace(config, "bench_latency")
    settings = dataclasses.replace(platform_settings.load(), cassandra_contact_points=config.contact_points[0],
                                   cassandra_port=config.port, cassandra_local_dc="")
    status = workdir / f"status-{suffix}"
    job = weather_jobs.weather_job(bootstrap, (workdir / f"ckpt-{suffix}").as_uri(), status.as_uri(), settings,
                                   trigger_seconds, extra_args=["--source-topic", source, "--dead-letter-topic", dead,
                                                                "--keyspace", keyspace])
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_CONF_DIR": str(spark_conf_dir),
           "DP_RESULTS_DB_URL": f"mysql://{db.user}:{quote(db.password)}@{db.host}:{db.port}/{db.database}"}
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    log_path = workdir / f"weather-job-{suffix}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([spark_submit, "--master", master, *job.submit_args((workdir / "build").as_uri())],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    watcher = RowWatcher(config, keyspace)
    observations = Observations(cities)
    producer = make_producer(bootstrap)
    results = []
    try:
        def drain(timeout_s: float) -> None:
            deadline = time.monotonic() + timeout_s
            while watcher.pending() and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"the job exited with {proc.returncode} (log: {log_path})")
                time.sleep(0.5)

        # Warm-up until observations make it all the way (JVM started, first batches planned).
        deadline = time.monotonic() + 600
        while not watcher.latencies:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the job wrote no warm-up observation (log: {log_path})")
            event, key = observations.next()
            watcher.expect(key, time.time())
            produce_events(producer, source, [event])
            time.sleep(2)
        drain(LATENCY_DRAIN_S)
        for rate in rates:
            with watcher.lock:
                watcher.latencies = []
            every = max(1, rate // samples_per_second)
            per_tick = max(1, rate // 10)
            produced = 0
            start = time.time()
            for tick in range(seconds * 10):
                batch, sampled = [], []
                for _ in range(per_tick):
                    event, key = observations.next()
                    batch.append(event)
                    if produced % every == 0:
                        sampled.append(key)
                    produced += 1
                produced_at = time.time()
                for key in sampled:
                    watcher.expect(key, produced_at)
                produce_events(producer, source, batch)
                time.sleep(max(0.0, start + (tick + 1) / 10 - time.time()))
            elapsed = time.time() - start
            sampled_total = len(watcher.latencies) + watcher.pending()
            drain(LATENCY_DRAIN_S)
            latencies = list(watcher.latencies)
            results.append({"rate": rate, "produced": produced, "seconds": elapsed, "sampled": sampled_total,
                            "seen": len(latencies), "p50": percentile(latencies, 0.5),
                            "p99": percentile(latencies, 0.99)})
            print(f"latency at {rate}/s: {results[-1]}", flush=True)
        status.joinpath("weather").mkdir(parents=True, exist_ok=True)
        (status / "weather" / "STOP").touch()
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            print(f"the job did not stop on its marker within 180 s: killed (log: {log_path})", flush=True)
        return results
    finally:
        watcher.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _seconds(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", type=int, default=100_000, help="backlog of the throughput runs")
    parser.add_argument("--cities", type=int, default=2000,
                        help="city ids the observations cycle over (a city's observations are >= 1 s apart)")
    parser.add_argument("--plain-processes", default="1,2", help="comma list of process counts of the plain loop")
    parser.add_argument("--max-offsets-per-trigger", type=int, help="throughput runs (default: the job's)")
    parser.add_argument("--latency-rates", default="100,1000", help="comma list of observations/s; empty for none")
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument("--samples-per-second", type=int, default=20, help="observations timed per second")
    parser.add_argument("--trigger-seconds", default=weather_jobs.TRIGGER_SECONDS,
                        help="the job's trigger in the latency runs (default: the supervisor's)")
    parser.add_argument("--latency-master", default="local[2]", help="as the local supervisor submits the job")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    processes = [int(n) for n in args.plain_processes.split(",") if n]
    rates = [int(r) for r in args.latency_rates.split(",") if r]

    workdir = Path(tempfile.mkdtemp(prefix="bench-weather-"))
    build_bundle(workdir / "build")
    # A private broker and Cassandra node of the embedded stack's kind, on free ports.
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port(),
                            cassandra_port=stack.free_port(), cassandra_storage_port=stack.free_port())
    started = []
    try:
        for service in (kafka_service.service(cfg), cassandra_service.service(cfg)):
            stack.start_service(cfg, service, dict(os.environ))
            started.append(service.name)
        spark_conf_dir = write_spark_conf(cfg)  # spark.jars for the spark-submit, as `dp up` writes it
        bootstrap = f"127.0.0.1:{cfg.kafka_port}"
        config = cassandra.CassandraConfig(contact_points=("127.0.0.1",), port=cfg.cassandra_port)
        mariadb.ensure_server(cfg)
        db = create_scratch_db(cfg.mysql_admin_url, "dp_bench")
        try:
            load_before = os.getloadavg()[0]
            seconds = {} if args.skip_throughput else throughput(
                bootstrap, config, db, args.observations, args.cities, processes, args.max_offsets_per_trigger)
            latencies = latency_runs(bootstrap, config, db, rates, args.latency_seconds, args.samples_per_second,
                                     args.cities, workdir, spark_conf_dir, args.trigger_seconds, args.latency_master)
        finally:
            drop_scratch_db(cfg.mysql_admin_url, db)
    finally:
        for name in reversed(started):
            stack.stop_service(cfg, name)

    n = args.observations
    print(f"\nweather job, Kafka {kafka_version()} (one KRaft node, {PARTITIONS} partitions) -> Cassandra "
          f"{cassandra_version()} (one node, {cassandra_service.HEAP} heap) + MySQL, Spark local[2], "
          f"{os.cpu_count()} cores shared with other work, load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| measurement | observations | s | observations/s | vs plain driver loop | p50 s | p99 s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    if seconds:
        plain = {p: n / seconds[f"plain {p}"] for p in processes}
        ceiling = max(plain.values())
        for p in processes:
            print(f"| plain driver loop, {p} process{'es' if p > 1 else ''} ({cassandra.DEFAULT_CONCURRENCY} "
                  f"in flight each){' - ceiling' if plain[p] == ceiling else ''} | {n:,} | "
                  f"{seconds[f'plain {p}']:.2f} | {plain[p]:,.0f} | {plain[p] / ceiling:.2f} | - | - |")
        for key, what in (("job observations", "weather job: observations query done (both running)"),
                          ("job both", "weather job: both queries done (+ hourly to Cassandra and MySQL)")):
            rate = n / seconds[key]
            print(f"| {what} | {n:,} | {seconds[key]:.2f} | {rate:,.0f} | {rate / ceiling:.2f} | - | - |")
        if seconds["job rows"] != n:
            print(f"\n(!) {seconds['job rows']:,} observation rows in Cassandra after the job, {n:,} produced")
    for run in latencies:
        print(f"| latency at {run['rate']:,}/s (spark-submit {args.latency_master}, trigger {args.trigger_seconds} s; "
              f"{run['seen']:,} of {run['sampled']:,} sampled rows seen) | {run['produced']:,} | {run['seconds']:.0f} | "
              f"{run['produced'] / run['seconds']:,.0f} | - | {_seconds(run['p50'])} | {_seconds(run['p99'])} |")


if __name__ == "__main__":
    main()
