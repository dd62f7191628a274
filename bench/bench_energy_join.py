"""Benchmark of the energy x weather join on this machine: readings/s through the stream-stream join
against a plain consumer as the ceiling, and join latency p50/p99 at a chosen rate.

    python bench/bench_energy_join.py --readings 200000 --latency-rate 1000 --latency-seconds 60
    python bench/bench_energy_join.py --readings 2000 --latency-rate 50 --latency-seconds 20   # smoke

A private broker of the embedded stack's kind (Apache Kafka, one KRaft node) on free ports under a
temporary home, and the job's queries (spark_apps/streaming/energy_weather/job.py) in-process, Spark
local[2] with the supervisor's streaming settings (include/streaming/metrics_jobs.py STREAM_CONF).
Prints one markdown table:

* ceiling: one confluent-kafka consumer (both partitions assigned) receiving the readings backlog;
* the join: the backlog of ``--readings`` 1-minute readings (the real producer, backfill mode, no
  gaps, no late or broken readings, weather one observation a minute of one city, from the
  recorded responses restamped) through the job's three queries started together on a new
  checkpoint; the time from the start until every reading is in ``energy/joined/`` or
  ``energy/unmatched/`` (a last reading and observation a day later move the watermarks past the
  backlog; no-data micro-batches on, so the final ones need no further data). Includes planning
  the first batches, as a restarted job would;
* latency at ``--latency-rate`` readings/s for ``--latency-seconds``: the producer live (1-minute
  readings, ``rate * 60`` households, each sent at its fixed offset inside the minute), weather
  every ``--weather-every`` s restamped now; the join with a short range and watermarks
  (``--before``/``--after``/``--watermark``: a reading cannot come out before the watermark has
  passed ``reading_time + after``, so the defaults of the job, minutes, would measure only them);
  per joined reading the time from when it was sent to when a poll of the lake (every 0.5 s) first
  found it. p50/p99. Event time moves in steps of the interval (one minute): a reading becomes final
  only once readings of a later minute have arrived, so a run shorter than about two minutes
  times none.

The issue's target is >= 0.5 of the plain consumer: reported, not asserted. Numbers go into the README.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from bench.bench_streaming import create_topics, drain_with_plain_consumer, kafka_version, percentile  # noqa: E402
from include.platform import stack  # noqa: E402
from include.platform.jvm import spark_jars  # noqa: E402
from include.platform.stack import kafka as kafka_service  # noqa: E402
from include.producers import energy  # noqa: E402
from include.producers import weather as weather_producer  # noqa: E402
from include.producers.metrics import make_producer, produce_events  # noqa: E402
from include.streaming.metrics_jobs import STREAM_CONF  # noqa: E402
from spark_apps.streaming.energy_weather import job, layout  # noqa: E402

CITY = 5344157
REGIONS = {"bench-region": CITY}
THROUGHPUT_TIMEOUT_S = 1800
# Two, not the three the topics are declared with: the ceiling (bench_streaming's plain consumer)
# assigns partitions 0 and 1.
PARTITIONS = 2


def weather_events(stamps: list[int]) -> list:
    """Recorded real responses, restamped to ``stamps`` (one city)."""
    lines = weather_producer.load_recorded()
    events = []
    for n, stamp in enumerate(stamps):
        def restamp(body, stamp=stamp):
            body["id"], body["dt"] = CITY, stamp
            return body
        events.append(weather_producer.replay_event(lines[n % len(lines)], restamp))
    return events


def spark_session():
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master("local[2]").appName("bench-energy-join")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.jars", spark_jars()))
    for key, value in STREAM_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def lake_count(spark, lake: str) -> int:
    total = 0
    for folder in (layout.JOINED_DIR, layout.UNMATCHED_DIR):
        try:
            total += spark.read.parquet(f"{lake}/{folder}").count()
        except Exception as error:
            if "PATH_NOT_FOUND" not in str(error) and "UNABLE_TO_INFER_SCHEMA" not in str(error):
                raise
    return total


def stop(queries) -> None:
    for query in queries:
        query.stop()


def throughput(spark, bootstrap: str, workdir: Path, readings: int) -> dict:
    topics = {role: f"bench_{role}_{uuid.uuid4().hex[:6]}" for role in ("readings", "weather", "dead")}
    create_topics(bootstrap, list(topics.values()), PARTITIONS)
    households = 1000 if readings >= 1000 else readings
    intervals = max(1, readings // households)
    count = households * intervals
    # Two days back: the last reading and observation, a day after the backlog, are still in the
    # past (both jobs refuse event times more than an hour after the record reached Kafka).
    start = int(time.time()) // 60 * 60 - 2 * 86400
    produce_events(make_producer(bootstrap), topics["weather"],
                   weather_events([start - 3600 + 60 * k for k in range(intervals + 61)] + [start + 86400]))
    temperatures = energy.WeatherTemperatures(bootstrap, topics["weather"], since_s=0)
    report = energy.run(bootstrap, topics["readings"], households, 1, REGIONS, start_s=start, intervals=intervals,
                        seed=1, gap_share=0.0, late_share=0.0, temperatures=temperatures)
    temperatures.close()
    assert report.produce.delivered == count, report.as_dict()
    flush = energy.Planned(0, 0, "flush", "bench-region", start + 86400, False)
    produce_events(make_producer(bootstrap), topics["readings"], [energy.make_event(
        flush, 1, REGIONS, energy.ObservedTemperatures(), random.Random(0), report, 0.0, 0.0)])
    plain_s = drain_with_plain_consumer(bootstrap, topics["readings"], count)

    lake = f"file://{workdir}/lake-throughput"
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "true")
    started = time.perf_counter()
    queries = job.start_queries(spark, bootstrap, lake, f"file://{workdir}/ck-throughput", REGIONS,
                                topics["readings"], topics["weather"], topics["dead"], trigger_seconds=0)
    deadline = time.monotonic() + THROUGHPUT_TIMEOUT_S
    try:
        while lake_count(spark, lake) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every reading in the lake after {THROUGHPUT_TIMEOUT_S} s")
            for query in queries:
                if query.exception() is not None:
                    raise RuntimeError(query.exception())
            time.sleep(0.5)
        join_s = time.perf_counter() - started
    finally:
        stop(queries)
        spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", STREAM_CONF[
            "spark.sql.streaming.noDataMicroBatches.enabled"])
    return {"count": count, "plain_s": plain_s, "join_s": join_s}


def latency(spark, bootstrap: str, workdir: Path, rate: int, seconds: int, weather_every: float, before: str,
            after: str, watermark: str, trigger_seconds: float) -> list[float]:
    topics = {role: f"bench_{role}_{uuid.uuid4().hex[:6]}" for role in ("readings", "weather", "dead")}
    create_topics(bootstrap, list(topics.values()), PARTITIONS)
    households = max(1, rate * 60)
    index = {energy.household_id(i): i for i in range(households)}
    lake = f"file://{workdir}/lake-latency"
    queries = job.start_queries(spark, bootstrap, lake, f"file://{workdir}/ck-latency", REGIONS, topics["readings"],
                                topics["weather"], topics["dead"], before, after, watermark, watermark,
                                trigger_seconds=trigger_seconds)
    done = threading.Event()

    def weather_loop() -> None:
        producer = make_producer(bootstrap)
        while not done.is_set():
            produce_events(producer, topics["weather"], weather_events([int(time.time())]))
            done.wait(weather_every)

    feeder = threading.Thread(target=weather_loop, daemon=True)
    feeder.start()
    time.sleep(weather_every)
    producing = threading.Thread(target=energy.run, kwargs=dict(
        bootstrap=bootstrap, topic=topics["readings"], households=households, interval_minutes=1,
        region_cities=REGIONS, duration_s=seconds, seed=1, gap_share=0.0, late_share=0.0,
        weather_topic=topics["weather"]), daemon=True)
    producing.start()
    seen: dict[tuple, float] = {}
    try:
        deadline = time.time() + seconds + 180
        while time.time() < deadline and (producing.is_alive() or time.time() < deadline - 120):
            try:
                rows = spark.read.parquet(f"{lake}/{layout.JOINED_DIR}").select("household_id", "reading_time") \
                    .collect()
            except Exception:
                rows = []
            now = time.time()
            for row in rows:
                seen.setdefault((row.household_id, row.reading_time), now)
            time.sleep(0.5)
    finally:
        done.set()
        stop(queries)
    latencies = []
    for (household, reading_time), found in seen.items():
        sent = reading_time.replace(tzinfo=timezone.utc).timestamp() + index.get(household, 0) * 60 / households
        latencies.append(found - sent)
    return latencies


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=200_000, help="backlog of the throughput run")
    parser.add_argument("--latency-rate", type=int, default=1000, help="readings/s; 0 for no latency run")
    parser.add_argument("--latency-seconds", type=int, default=180, help=">= 120: see above")
    parser.add_argument("--weather-every", type=float, default=10.0, help="seconds between observations")
    parser.add_argument("--before", default="60 seconds")
    parser.add_argument("--after", default="10 seconds")
    parser.add_argument("--watermark", default="5 seconds", help="of both sides, in the latency run")
    parser.add_argument("--trigger-seconds", type=float, default=0.0, help="latency run (0: back to back)")
    args = parser.parse_args(argv)

    # A SIGTERM (a stopped run) must still stop the private broker: the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="bench-energy-"))
    cfg = stack.StackConfig(home=workdir / "home", kafka_port=stack.free_port(),
                            kafka_controller_port=stack.free_port(), moto_port=stack.free_port())
    stack.start_service(cfg, kafka_service.service(cfg), dict(os.environ))
    load_before = os.getloadavg()[0]
    try:
        bootstrap = f"127.0.0.1:{cfg.kafka_port}"
        spark = spark_session()
        result = throughput(spark, bootstrap, workdir, args.readings)
        latencies = latency(spark, bootstrap, workdir, args.latency_rate, args.latency_seconds, args.weather_every,
                            args.before, args.after, args.watermark, args.trigger_seconds) if args.latency_rate else []
        spark.stop()
    finally:
        stack.stop_service(cfg, "kafka")
        shutil.rmtree(workdir, ignore_errors=True)

    n = result["count"]
    plain, joined = n / result["plain_s"], n / result["join_s"]
    print(f"\nenergy x weather join, Kafka {kafka_version()} (one KRaft node, {PARTITIONS} partitions), Spark local[2], "
          f"{os.cpu_count()} cores shared with other work, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| readings | plain consumer readings/s | join readings/s | vs plain | latency rate/s | readings timed "
          "| p50 s | p99 s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)

    def fmt(value) -> str:
        return value if isinstance(value, str) else f"{value:.1f}"

    print(f"| {n:,} | {plain:,.0f} | {joined:,.0f} | {joined / plain:.3f} | {args.latency_rate} | {len(latencies)} "
          f"| {fmt(p50)} | {fmt(p99)} |")


if __name__ == "__main__":
    main()
