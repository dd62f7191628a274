"""The weather pipeline against a real Cassandra node (``cassandra_node`` of tests/spark_apps/conftest.py:
one for the test session, private ports), the real broker and MariaDB: known responses produced,
the job's two queries run, every observation in Cassandra once and the hourly rows right in
Cassandra and MySQL; bad records dead-lettered while the job keeps running; Cassandra stopped
mid-stream and started again.

Expected values come from what the test produced (the recorded real responses and hand-made
ones), never from the pipeline's code."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from pyspark.errors import StreamingQueryException

from include.cassandra import schema
from include.platform import settings as platform_settings
from include.platform.spark_jobs import build_bundle
from include.platform.stack import StackConfig
from include.platform.stack.environment import write_spark_conf
from include.producers import weather as producer
from include.streaming import health, weather_jobs
from tests.spark_apps.streaming.weather.pipeline import (
    WeatherPipeline,
    assert_hourly_exact,
    assert_observations_exact,
    wait_for,
)
from tests.spark_apps.streaming.weather.responses import HOURLY_EXPECTED, HOURLY_INPUT, recorded_lines

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(1200)]


@pytest.fixture
def pipeline(spark, kafka_broker, cassandra_node, fresh_results_db, tmp_path):
    return WeatherPipeline(spark, kafka_broker, cassandra_node, fresh_results_db, tmp_path)


def recorded_bodies() -> list[dict]:
    """The recorded responses as the producer publishes them (the scraper's key taken out)."""
    return [json.loads(producer.replay_event(line).value) for line in recorded_lines()]


def test_recorded_and_hand_made_responses_land_once_with_right_hours(pipeline, kafka_broker):
    # The real producer replays the 300 recorded responses twice (original timestamps: the
    # second pass repeats every observation, as the API does between station reports).
    report = producer.run_replay(kafka_broker.bootstrap, pipeline.source, producer.RECORDED_DIR, rate=10_000,
                                 count=600, loop=True)
    assert report.delivered == 600
    pipeline.sent += recorded_bodies() * 2
    pipeline.produce(HOURLY_INPUT, raw=[b'{"cod": "404", "message": "city not found"}', b"{truncated"])

    pipeline.run_available_now()
    assert_observations_exact(pipeline)
    assert len(pipeline.observations_in_cassandra()) == 300 + 5  # HOURLY_INPUT has one repeat
    assert_hourly_exact(pipeline)
    hand_made = {key: value for key, value in pipeline.hourly_in_cassandra().items() if key[0] in (100, 200)}
    assert hand_made.keys() == HOURLY_EXPECTED.keys()
    assert hand_made[(100, min(k[1] for k in HOURLY_EXPECTED))][0] == 3
    assert sorted(b["reason"] for b in pipeline.dead_letter_bodies()) == ["api_error:404", "invalid_json"]

    # Run again from the checkpoints: nothing new, nothing changes (also no dead letter again).
    before = (pipeline.hourly_in_cassandra(), len(pipeline.observations_in_cassandra()))
    pipeline.run_available_now()
    assert (pipeline.hourly_in_cassandra(), len(pipeline.observations_in_cassandra())) == before
    assert len(pipeline.dead_letter_bodies()) == 2

    # A replay of everything through fresh checkpoints (what a lost checkpoint or a replayed
    # batch does, at worst) rewrites the same rows: upserts only.
    rows_before = sorted(tuple(r) for r in pipeline.observations_in_cassandra())
    pipeline.checkpoint += "_replayed"
    pipeline.run_available_now()
    assert sorted(tuple(r) for r in pipeline.observations_in_cassandra()) == rows_before
    assert_hourly_exact(pipeline)


def test_a_malformed_response_is_dead_lettered_and_the_job_keeps_running(pipeline):
    bodies = recorded_bodies()
    queries = pipeline.start(trigger_seconds=0.5)
    try:
        pipeline.produce(bodies[:20])
        wait_for(lambda: pipeline.observation_count() == 20, 180, "the first observations in Cassandra")
        pipeline.produce(bodies[20:40], raw=[b'{"coord": {"lon": -121.9'])
        wait_for(lambda: pipeline.observation_count() == 40, 180, "the next observations in Cassandra")
        wait_for(lambda: pipeline.dead_letter_bodies(), 60, "the dead letter")
        assert all(q.isActive and q.exception() is None for q in queries)
        letters = pipeline.dead_letter_bodies()
        assert [(d["reason"], d["source_topic"], d["raw_value_text"]) for d in letters] == [
            ("invalid_json", pipeline.source, '{"coord": {"lon": -121.9')]
        wait_for(lambda: pipeline.hourly_in_mysql() == pipeline.expected_hourly(), 120, "the hours in MySQL")
    finally:
        pipeline.stop(queries)
    assert_observations_exact(pipeline)
    assert_hourly_exact(pipeline)


def test_cassandra_stopped_mid_stream_then_started_every_observation_once(pipeline, cassandra_node):
    """As the supervisor runs the job: a query that fails is resubmitted (from its checkpoint)
    after a pause, again and again while Cassandra is down; once it is back, the replayed
    batches write what was missing and nothing twice."""
    bodies = recorded_bodies()
    state = {"queries": pipeline.start(trigger_seconds=0.5), "failures": 0}

    def supervise():
        queries = state["queries"]
        failed = [q for q in queries if not q.isActive and q.exception() is not None]
        if failed:
            state["failures"] += 1
            assert isinstance(failed[0].exception(), StreamingQueryException)
            pipeline.stop(queries)
            time.sleep(2)  # the supervisor's retry delay
            state["queries"] = pipeline.start(trigger_seconds=0.5)

    try:
        pipeline.produce(bodies[:100])
        wait_for(lambda: pipeline.observation_count() == 100, 240, "the first observations", tick=supervise)

        cassandra_node.stop()
        pipeline.produce(bodies[100:200])
        # The next micro-batch cannot be written: the queries fail (and are resubmitted).
        wait_for(lambda: state["failures"] > 0, 180, "a query failing on Cassandra", tick=supervise)
        pipeline.produce(bodies[200:250])  # more while Cassandra is down
        for _ in range(3):  # a few resubmissions while it is down
            time.sleep(2)
            supervise()
        cassandra_node.start()
        pipeline.produce(bodies[250:300])

        wait_for(lambda: pipeline.observation_count() == 300, 300, "every observation after the restart",
                 tick=supervise)
        wait_for(lambda: pipeline.hourly_in_mysql() == pipeline.expected_hourly(), 180, "the hours in MySQL",
                 tick=supervise)
    finally:
        pipeline.stop(state["queries"])
    assert state["failures"] >= 1
    assert_observations_exact(pipeline)
    assert_hourly_exact(pipeline)


def test_schema_bootstrap_creates_the_platform_keyspaces_once(cassandra_node):
    env = {"DP_CASSANDRA_CONTACT_POINTS": "127.0.0.1", "DP_CASSANDRA_PORT": str(cassandra_node.cfg.cassandra_port)}
    replication = '{"class": "SimpleStrategy", "replication_factor": 1}'
    assert schema.bootstrap(replication, env) == [
        "created keyspace weather", "created table weather.observations", "created table weather.hourly",
        "created keyspace air_quality", "created table air_quality.hourly_readings"]
    assert schema.bootstrap(replication, env) == []  # idempotent
    columns = {(r.table_name, r.column_name): (r.kind, r.clustering_order) for r in cassandra_node.query(
        "SELECT table_name, column_name, kind, clustering_order FROM system_schema.columns WHERE keyspace_name = 'weather'")}
    assert columns[("observations", "city_id")] == columns[("observations", "day")] == ("partition_key", "none")
    assert columns[("observations", "observed_at")] == ("clustering", "desc")
    assert columns[("hourly", "month")] == ("partition_key", "none")
    assert columns[("hourly", "hour")] == ("clustering", "desc")
    readings = {(r.column_name, r.kind, r.clustering_order) for r in cassandra_node.query(
        "SELECT column_name, kind, clustering_order FROM system_schema.columns WHERE keyspace_name = 'air_quality'")
        if r.kind != "regular"}
    assert readings == {("station", "partition_key", "none"), ("month", "partition_key", "none"),
                        ("from_ts", "clustering", "desc")}
    with pytest.raises(ValueError, match="JSON object with a 'class'"):
        schema.replication_cql('{"replication_factor": 1}')


def test_the_job_as_the_supervisor_submits_it_reports_progress_and_stops_on_the_marker(
        pipeline, cassandra_node, kafka_broker, fresh_results_db, tmp_path):
    """spark-submit of the bundle with the SparkJob of include/streaming/weather_jobs.py (the
    Cassandra module reaches the executors in spark_apps.zip); the health check reads its
    progress; the STOP marker ends it with 0."""
    apps = tmp_path / "build"
    build_bundle(apps)
    db = fresh_results_db
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_CONF_DIR": str(write_spark_conf(StackConfig(home=tmp_path / "home"))),
           "DP_RESULTS_DB_URL": f"mysql://{db.user}:{quote(db.password)}@{db.host}:{db.port}/{db.database}"}
    settings = dataclasses.replace(platform_settings.load(), cassandra_contact_points="127.0.0.1",
                                   cassandra_port=cassandra_node.cfg.cassandra_port)
    status = tmp_path / "status"
    job = weather_jobs.weather_job(kafka_broker.bootstrap, f"file://{tmp_path}/checkpoints", status.as_uri(), settings,
                                   "0.5", extra_args=["--source-topic", pipeline.source, "--dead-letter-topic",
                                                      pipeline.dead_letters, "--keyspace", pipeline.keyspace])
    assert job.args[job.args.index("--cassandra-port") + 1] == str(cassandra_node.cfg.cassandra_port)
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    log_path = tmp_path / "weather.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([spark_submit, "--master", "local[2]", *job.submit_args(apps.as_uri())],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        def alive():
            assert proc.poll() is None, f"the job exited with {proc.returncode}: {log_path.read_text()[-3000:]}"

        pipeline.produce(recorded_bodies()[:50], raw=[b'{"cod": 500}'])
        wait_for(lambda: pipeline.observation_count() == 50, 300, "the observations", tick=alive)
        wait_for(lambda: pipeline.hourly_in_mysql() == pipeline.expected_hourly(), 180, "the hours in MySQL", tick=alive)
        wait_for(lambda: [b["reason"] for b in pipeline.dead_letter_bodies()] == ["api_error:500"], 60, "the dead letter")

        def healthy() -> bool:
            try:
                report = health.check(status / "weather", kafka_broker.bootstrap, weather_jobs.QUERIES["weather"],
                                      max_staleness_s=600, max_lag_records=0)
            except health.StreamingUnhealthy:
                return False
            return sorted(r.name for r in report) == ["weather_hourly", "weather_observations"]

        wait_for(healthy, 120, "both queries reported without lag", tick=alive)
        (status / "weather" / "STOP").touch()
        assert proc.wait(timeout=180) == 0, log_path.read_text()[-3000:]
        assert (status / "weather" / "STOPPED").is_file()  # what `dp stream-stop --wait` waits for
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
    assert_observations_exact(pipeline)
    assert_hourly_exact(pipeline)
