"""The energy x weather job end to end on the real broker: hand-made weather and the real producer's
readings (gaps, late readings, broken records; its temperatures read from the weather topic) in,
the job's three queries run in the test's Spark session, and the lake's Parquet and the dead
letters checked against what the test itself computes from what was produced: each valid reading
exactly once, joined with its nearest observation in range (the one the producer computed its kWh
from) or unmatched, every broken record a dead letter with its reason; run again from the
checkpoints and nothing changes, a reading sent twice is one row."""
from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from include.producers import energy
from spark_apps.streaming.energy_weather import job, layout
from tests.spark_apps.streaming.waiting import wait_for
from tests.spark_apps.streaming.weather.responses import H0, response

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(1200)]

DUBLIN = 5344157
REGIONS = {"dublin-east": DUBLIN, "dublin-west": DUBLIN, "nowhere": 999}
BEFORE_S, AFTER_S = 3600, 600
# Observations: none between 14:30 and 15:30 UTC, so readings at 14:45-15:15 have none in range.
WEATHER = [(H0 - 1800, 4.0), (H0 + 5400, 12.0)]
INTERVALS = 8  # 15-minute readings from H0 (14:00) to 15:45
FLUSH_AT = H0 + 86400  # a reading and an observation a day later push both watermarks past the rest


def utc(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc).replace(tzinfo=None)


def valid_reading(value: bytes) -> dict | None:
    """The test's own reading of a record: a reading the job must accept, else None."""
    try:
        body = json.loads(value)
    except ValueError:
        return None
    if set(body) != {"household_id", "region", "reading_time", "interval_minutes", "kwh"}:
        return None
    if not (isinstance(body["kwh"], (int, float)) and isinstance(body["interval_minutes"], int)
            and isinstance(body["reading_time"], str)):
        return None
    if body["kwh"] < 0 or body["region"] not in REGIONS:
        return None
    return body


def nearest(region: str, at: int) -> tuple[int, float] | None:
    if REGIONS[region] != DUBLIN:
        return None
    inside = [(abs(dt - at), dt, temp) for dt, temp in WEATHER if at - BEFORE_S <= dt <= at + AFTER_S]
    return min(inside)[1:] if inside else None


class Run:
    def __init__(self, spark, broker, tmp_path):
        self.spark, self.broker = spark, broker
        self.readings = broker.create_topic(partitions=2)
        self.weather = broker.create_topic(partitions=2)
        self.dead = broker.create_topic(partitions=1)
        self.lake = f"file://{tmp_path}/lake"
        self.checkpoint = f"file://{tmp_path}/checkpoints/energy_weather"

    def start(self):
        return job.start_queries(self.spark, self.broker.bootstrap, self.lake, self.checkpoint, REGIONS,
                                 self.readings, self.weather, self.dead, trigger_seconds=0.5)

    def dataset(self, folder: str):
        try:
            return self.spark.read.parquet(f"{self.lake}/{folder}")
        except Exception as error:  # not written yet
            if "PATH_NOT_FOUND" in str(error) or "UNABLE_TO_INFER_SCHEMA" in str(error):
                return None
            raise

    def count(self, folder: str) -> int:
        frame = self.dataset(folder)
        return 0 if frame is None else frame.count()

    def run_until(self, joined: int, unmatched: int, dead: int) -> None:
        queries = self.start()
        try:
            def done() -> bool:
                for query in queries:
                    assert query.exception() is None, query.exception()
                return ((self.count(layout.JOINED_DIR), self.count(layout.UNMATCHED_DIR), len(self.dead_letters()))
                        == (joined, unmatched, dead))
            wait_for(done, 400, "the joined, unmatched and dead-letter counts", interval_s=2)
            for query in queries:
                query.processAllAvailable()
            time.sleep(3)  # a few more (empty) batches: nothing more may come
        finally:
            for query in queries:
                query.stop()

    def dead_letters(self) -> list[dict]:
        return [json.loads(r.value()) for r in self.broker.consume_all(self.dead, partitions=1)]


def test_readings_join_the_weather_they_were_computed_from_exactly_once(spark, kafka_broker, tmp_path):
    run = Run(spark, kafka_broker, tmp_path)
    kafka_broker.produce(run.weather, [(str(DUBLIN).encode(), json.dumps(response(DUBLIN, dt, temp, 70, 2.0)).encode(),
                                        i % 2) for i, (dt, temp) in enumerate(WEATHER)]
                         + [(b"x", b'{"cod": "404", "message": "city not found"}', 0)])
    report = energy.run(kafka_broker.bootstrap, run.readings, households=9, interval_minutes=15,
                        region_cities=REGIONS, start_s=H0, intervals=INTERVALS, seed=3, gap_share=0.1,
                        late_share=0.2, late_minutes=20, invalid_share=0.1, noise_kw=0.0, weather_topic=run.weather)
    assert report.produce.delivered == 9 * INTERVALS - report.gaps and report.gaps > 0 and report.late > 0
    records = kafka_broker.consume_all(run.readings, partitions=2)
    valid = {}
    for record in records:
        body = valid_reading(record.value())
        if body is not None:
            valid[(body["household_id"], energy.parse_iso(body["reading_time"]))] = body
    assert len(valid) == report.produce.valid
    # A reading sent twice (the first three valid ones again) and the flush pair.
    again = [r for r in records if valid_reading(r.value()) is not None][:3]
    kafka_broker.produce(run.readings, [(r.key(), r.value(), r.partition()) for r in again])
    flush = {"household_id": "flush", "region": "dublin-east", "reading_time": energy.iso(FLUSH_AT),
             "interval_minutes": 15, "kwh": 0.1}
    kafka_broker.produce(run.readings, [(b"flush", json.dumps(flush).encode(), 0)])
    kafka_broker.produce(run.weather, [(str(DUBLIN).encode(),
                                        json.dumps(response(DUBLIN, FLUSH_AT, 1.0, 70, 2.0)).encode(), 0)])

    expected_joined, expected_unmatched = {}, {}
    for (household, at), body in valid.items():
        match = nearest(body["region"], at)
        if match is None:
            expected_unmatched[(household, utc(at))] = (body["region"], body["kwh"])
            assert body["kwh"] == round(energy.power_kw(household, at, energy.REFERENCE_C) * 0.25, 6)
        else:
            expected_joined[(household, utc(at))] = (body["region"], body["kwh"], DUBLIN, utc(match[0]), match[1])
            # The producer computed the reading from the very observation the join picks.
            assert body["kwh"] == round(energy.power_kw(household, at, match[1]) * 0.25, 6)
    assert expected_joined and expected_unmatched
    assert {r for r, _ in expected_unmatched.values()} == {"dublin-east", "dublin-west", "nowhere"}

    run.run_until(len(expected_joined), len(expected_unmatched), report.produce.invalid)

    joined = run.dataset(layout.JOINED_DIR)
    assert [(f.name, f.dataType.simpleString()) for f in joined.schema.fields] == list(layout.JOINED_COLUMNS)
    got = {(r.household_id, r.reading_time): (r.region, r.kwh, r.city_id, r.weather_time, r.temperature_c)
           for r in joined.collect()}
    assert got == expected_joined
    assert {r.event_date for r in joined.collect()} == {utc(H0).date()}
    unmatched = run.dataset(layout.UNMATCHED_DIR).collect()
    assert {(r.household_id, r.reading_time): (r.region, r.kwh) for r in unmatched} == expected_unmatched
    assert {r.reason for r in unmatched} == {"no weather within range"}

    letters = run.dead_letters()
    prefixes = {"invalid_json": "invalid_json", "missing_field": "missing_field:", "wrong_type": "wrong_type:",
                "negative_kwh": "out_of_range:kwh", "unknown_region": "unknown_region:atlantis"}
    assert Counter(next(k for k, p in prefixes.items() if d["reason"].startswith(p)) for d in letters) == Counter(
        report.produce.invalid_by_kind)
    assert {d["source_topic"] for d in letters} == {run.readings}
    coordinates = {(r.partition(), r.offset()) for r in records}
    assert all((d["source_partition"], d["source_offset"]) in coordinates for d in letters)

    # Again from the checkpoints: nothing new in the lake, no dead letter twice.
    run.run_until(len(expected_joined), len(expected_unmatched), report.produce.invalid)
    assert run.count(layout.JOINED_DIR) == len(expected_joined)


def test_the_job_as_the_supervisor_submits_it_reports_progress_and_stops_on_the_marker(kafka_broker, tmp_path):
    """spark-submit of the bundle with the SparkJob of include/streaming/energy_jobs.py: rows reach
    the lake, the health check reads the three queries' progress (with their observed counts), and
    the STOP marker ends the job with 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from include.platform.spark_jobs import build_bundle
    from include.platform.stack import StackConfig
    from include.platform.stack.environment import write_spark_conf
    from include.streaming import energy_jobs, health

    run = Run(None, kafka_broker, tmp_path)
    apps = tmp_path / "build"
    build_bundle(apps)
    status = tmp_path / "status"
    job = energy_jobs.energy_weather_job(
        kafka_broker.bootstrap, run.lake, f"file://{tmp_path}/checkpoints", status.as_uri(), "0.5", REGIONS,
        extra_args=["--readings-topic", run.readings, "--weather-topic", run.weather, "--dead-letter-topic", run.dead])
    assert job.args[job.args.index("--region-cities") + 1] == "dublin-east=5344157,dublin-west=5344157,nowhere=999"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_CONF_DIR": str(write_spark_conf(StackConfig(home=tmp_path / "home")))}
    log_path = tmp_path / "energy.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
                                 *job.submit_args(apps.as_uri())], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        def alive():
            assert proc.poll() is None, f"the job exited with {proc.returncode}: {log_path.read_text()[-3000:]}"

        kafka_broker.produce(run.weather, [(b"5344157", json.dumps(response(DUBLIN, dt, temp, 70, 2.0)).encode(), 0)
                                           for dt, temp in WEATHER])
        readings = [{"household_id": "h1", "region": "dublin-east", "reading_time": energy.iso(H0), "interval_minutes": 15,
                     "kwh": 0.3},
                    {"household_id": "h2", "region": "nowhere", "reading_time": energy.iso(H0), "interval_minutes": 15,
                     "kwh": 0.2}]
        kafka_broker.produce(run.readings, [(r["household_id"].encode(), json.dumps(r).encode(), 0) for r in readings]
                             + [(b"bad", b"{nope", 1)])
        # Stream time moves on: the next batches bring a reading and an observation a day later.
        kafka_broker.produce(run.weather, [(b"5344157", json.dumps(response(DUBLIN, FLUSH_AT, 1.0, 70, 2.0)).encode(), 0)])
        kafka_broker.produce(run.readings, [(b"h1", json.dumps({**readings[0], "reading_time": energy.iso(FLUSH_AT)})
                                             .encode(), 0)])

        def written() -> bool:
            files = {folder: list((tmp_path / "lake" / folder).rglob("*.parquet"))
                     for folder in (layout.JOINED_DIR, layout.UNMATCHED_DIR)}
            if all(files.values()):
                return True
            # With no-data batches off (the supervisor's setting) eviction waits for a batch with data.
            kafka_broker.produce(run.readings, [(b"tick", json.dumps({**readings[0], "household_id": "tick",
                                                                      "reading_time": energy.iso(FLUSH_AT)}).encode(), 1)])
            return False

        wait_for(written, 300, "joined and unmatched files", interval_s=3, tick=alive)

        def healthy() -> bool:
            try:
                report = health.check(status / "energy_weather", kafka_broker.bootstrap,
                                      energy_jobs.QUERIES["energy_weather"], max_staleness_s=600, max_lag_records=10)
            except health.StreamingUnhealthy:
                return False
            return sorted(r.name for r in report) == ["energy_dead_letters", "energy_joined", "energy_unmatched"]

        wait_for(healthy, 120, "the three queries reported", tick=alive)
        progress = json.loads((status / "energy_weather" / "energy_joined.json").read_text())
        assert "energy_joined" in progress["observed_metrics"] and progress["state_operators"]
        (status / "energy_weather" / "STOP").touch()
        assert proc.wait(timeout=180) == 0, log_path.read_text()[-3000:]
        assert (status / "energy_weather" / "STOPPED").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
    assert [d["reason"] for d in run.dead_letters()] == ["invalid_json"]
