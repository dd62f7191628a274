"""The app-events job end to end on the real broker and MariaDB, in the test's Spark session (and once
as the supervisor submits it): known events, bad ones among them, produced to a topic of the test's
own; then the stats rows in MySQL, the Parquet files in the lake and the dead letters checked
against what was produced (hand-computed, or counted from the producer's own records - never from
the pipeline's code)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from include.platform.spark_jobs import build_bundle
from include.platform.stack import StackConfig
from include.platform.stack.environment import write_spark_conf
from include.producers import app_events as producer
from include.streaming import app_events_jobs, health
from spark_apps.streaming.app_events import job, tables
from tests.spark_apps.streaming.app_events.events import (
    STATS_EXPECTED_1MIN,
    STATS_INPUT,
    T0_MS,
    encode,
    event,
)
from tests.spark_apps.streaming.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(1200)]
QUERY_TIMEOUT_S = 300


class AppEventsPipeline:
    """One test's topics, lake, checkpoints and database; runs the job's queries in the test's
    Spark session and reads what they wrote."""

    def __init__(self, spark, broker, db, tmp_path):
        self.spark, self.broker, self.db = spark, broker, db
        self.source = broker.create_topic(partitions=2)
        self.dead_letters = broker.create_topic(partitions=1)
        self.lake = (tmp_path / "lake").as_uri()
        self.checkpoint = f"file://{tmp_path}/checkpoints/app_events"

    def produce(self, bodies: list[dict] = (), raw: list[bytes | None] = ()) -> None:
        """Valid events keyed by user (partition by user, as the producer's key does) and raw records."""
        records = [(str(b["user_id"]).encode(), encode(b), b["user_id"] % 2) for b in bodies]
        records += [(b"bad", value, 0) for value in raw]
        self.broker.produce(self.source, records)

    def start(self, **trigger):
        return job.start_queries(self.spark, self.broker.bootstrap, self.lake, self.checkpoint, self.db,
                                 self.source, self.dead_letters, **(trigger or {"available_now": True}))

    def run_available_now(self) -> None:
        queries = self.start()
        try:
            for query in queries:
                assert query.awaitTermination(QUERY_TIMEOUT_S), f"{query.name} did not finish"
                assert query.exception() is None, query.exception()
        finally:
            self.stop(queries)

    @staticmethod
    def stop(queries) -> None:
        for query in queries:
            if query.isActive:
                query.stop()

    # --- what is there ----------------------------------------------------------------------

    def _mysql(self, sql: str) -> list[dict]:
        """The rows of a query; none while the job has not created its tables yet (a job just submitted)."""
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(sql)
                except Exception as error:
                    if "doesn't exist" in str(error):
                        return []
                    raise
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def stats(self) -> dict:
        """(category, window start ms) -> (views, likes, avg watch, total watch, distinct users)."""
        return {(r["category"], int(r["window_start"].replace(tzinfo=timezone.utc).timestamp() * 1000)):
                (r["views"], r["likes"], r["avg_watch_time_s"], r["total_watch_time_s"], r["distinct_users"])
                for r in self._mysql(f"SELECT * FROM `{tables.STATS_TABLE}`")}

    def window_ends_ok(self) -> bool:
        return all((r["window_end"] - r["window_start"]).total_seconds() == 60
                   for r in self._mysql(f"SELECT * FROM `{tables.STATS_TABLE}`"))

    def dead_letter_counts(self) -> dict:
        counts: dict = defaultdict(int)
        for r in self._mysql(f"SELECT * FROM `{tables.DEAD_LETTER_COUNTS_TABLE}`"):
            counts[r["reason_kind"]] += r["dead_letters"]
        return dict(counts)

    def clean_rows(self) -> list:
        path = job.clean_uri(self.lake)
        if not Path(path.removeprefix("file://")).exists():
            return []
        return self.spark.read.parquet(path).collect()

    def dead_letter_bodies(self) -> list[dict]:
        return [json.loads(r.value()) for r in self.broker.consume_all(self.dead_letters, partitions=1)]

    def source_records(self) -> dict:
        """(partition, offset) -> value of every record of the source topic."""
        return {(r.partition(), r.offset()): r.value() for r in self.broker.consume_all(self.source, partitions=2)}


@pytest.fixture
def pipeline(spark, kafka_broker, fresh_results_db, tmp_path):
    return AppEventsPipeline(spark, kafka_broker, fresh_results_db, tmp_path)


BAD_RAW = [b'{"event_id": "z", "user_id": 1', encode(event("y", 9, "Crypto/NFT", 3.0, False, T0_MS)), None]


def test_hand_made_events_give_the_hand_computed_stats_lake_rows_and_dead_letters(pipeline):
    pipeline.produce(STATS_INPUT, raw=BAD_RAW)
    pipeline.run_available_now()

    assert pipeline.stats() == STATS_EXPECTED_1MIN
    assert pipeline.window_ends_ok()
    rows = pipeline.clean_rows()
    assert sorted(r.event_id for r in rows) == ["a", "b", "c", "d", "e"]
    sent = {b["event_id"]: b for b in STATS_INPUT}
    source = pipeline.source_records()
    for r in rows:
        body = sent[r.event_id]
        assert (r.user_id, r.category, r.watch_time_s, r.liked, r.event_time_ms) == (
            body["user_id"], body["category"], body["watch_time_s"], body["liked"], body["event_time_ms"])
        assert str(r.event_date) == "2026-01-05"
        assert json.loads(source[(r.source_partition, r.source_offset)])["event_id"] == r.event_id
    partitions = sorted(p.name for p in Path(job.clean_uri(pipeline.lake).removeprefix("file://")).iterdir()
                        if p.name.startswith(tables.PARTITION_COLUMN))
    assert partitions == ["event_date=2026-01-05"]

    letters = pipeline.dead_letter_bodies()
    assert sorted(b["reason"] for b in letters) == ["empty_value", "invalid_json", "unknown_category"]
    for body in letters:  # each names the source record it carries
        assert body["source_topic"] == pipeline.source
        raw = source[(body["source_partition"], body["source_offset"])]
        assert body.get("raw_value_text") == (raw.decode() if raw else None)
    assert pipeline.dead_letter_counts() == {"empty_value": 1, "invalid_json": 1, "unknown_category": 1}

    # Again from the checkpoints: nothing new, nothing changes, no dead letter sent twice.
    pipeline.run_available_now()
    assert pipeline.stats() == STATS_EXPECTED_1MIN
    assert len(pipeline.clean_rows()) == 5 and len(pipeline.dead_letter_bodies()) == 3

    # A replay of the whole topic through new checkpoints (a lost checkpoint, at worst) rewrites the
    # same stats rows (upserts of absolute totals, never increments) and adds no lake row.
    pipeline.checkpoint += "_replayed"
    pipeline.run_available_now()
    assert pipeline.stats() == STATS_EXPECTED_1MIN
    assert sorted(r.event_id for r in pipeline.clean_rows()) == ["a", "b", "c", "d", "e"]
    # Dead letters are at-least-once (Kafka sink): sent again, with the same source coordinates as keys.
    keys = [(b["source_partition"], b["source_offset"]) for b in pipeline.dead_letter_bodies()]
    assert len(set(keys)) == 3


def test_a_running_job_updates_windows_in_place_keeps_late_views_out_of_the_stats_but_in_the_lake(pipeline):
    nine = T0_MS + 9 * 60_000
    queries = pipeline.start(trigger_seconds=0.5)
    try:
        # In two steps: the view of minute 9 must not reach the query before the first minute's
        # (the two partitions are read as they are, and it would make those late).
        pipeline.produce(STATS_INPUT)
        wait_for(lambda: pipeline.stats() == STATS_EXPECTED_1MIN, 240, "the first windows in MySQL")
        pipeline.produce([event("f", 4, "Dance", 9.0, True, nine + 1_000)])
        expected = {**STATS_EXPECTED_1MIN, ("Dance", nine): (1, 1, 9.0, 9.0, 1)}
        wait_for(lambda: pipeline.stats() == expected, 240, "the window of minute 9 in MySQL")
        # The watermark is now 2 minutes before the newest view (T0 + 9:01): a view of the first
        # minute is late; one of minute 9 updates that window's row.
        late = event("g", 5, "Dance", 50.0, True, T0_MS + 20_000)
        update = event("h", 1, "Dance", 11.0, False, nine + 30_000)
        pipeline.produce([late, update], raw=[b"[]"])
        expected[("Dance", nine)] = (2, 1, 10.0, 20.0, 2)
        wait_for(lambda: pipeline.stats() == expected, 240, "the updated window in MySQL")
        wait_for(lambda: len(pipeline.clean_rows()) == 8, 120, "every view in the lake")
        wait_for(lambda: pipeline.dead_letter_counts() == {"not_a_json_object": 1}, 120, "the dead letter counted")
        assert all(q.isActive and q.exception() is None for q in queries)
    finally:
        pipeline.stop(queries)
    assert pipeline.stats() == expected  # the late view changed nothing (its window was final)
    assert sorted(r.event_id for r in pipeline.clean_rows()) == list("abcdefgh")
    assert [b["reason"] for b in pipeline.dead_letter_bodies()] == ["not_a_json_object"]


def test_the_producers_stream_lands_whole(pipeline, kafka_broker):
    """The real producer's skewed stream with broken records: every valid event in the lake once,
    the views per category and window as counted from the producer's own records, every broken
    one dead-lettered and counted."""
    count, spacing = 3000, 40  # 120 s of event time: two windows per category
    report = producer.run_count(kafka_broker.bootstrap, count, pipeline.source, seed=11, start_ms=T0_MS,
                                spacing_ms=spacing, invalid_share=0.05)
    assert report.delivered == count
    sent = producer.generate_events(count, seed=11, start_ms=T0_MS, spacing_ms=spacing, invalid_share=0.05)
    valid = [json.loads(e.value) for e in sent if e.invalid_kind is None]
    views, users = defaultdict(int), defaultdict(set)
    for body in valid:
        key = (body["category"], body["event_time_ms"] // 60_000 * 60_000)
        views[key] += 1
        users[key].add(body["user_id"])

    pipeline.run_available_now()
    stats = pipeline.stats()
    assert {key: row[0] for key, row in stats.items()} == dict(views)
    for key, row in stats.items():  # approx_count_distinct at rsd 0.05: within 15 % (3 sigma) or 1
        assert abs(row[4] - len(users[key])) <= max(1, 0.15 * len(users[key])), (key, row[4], len(users[key]))
    rows = pipeline.clean_rows()
    assert len(rows) == len({r.event_id for r in rows}) == report.valid == len(valid)
    assert {r.event_id for r in rows} == {b["event_id"] for b in valid}
    assert len(pipeline.dead_letter_bodies()) == report.invalid
    assert sum(pipeline.dead_letter_counts().values()) == report.invalid


def test_the_job_as_the_supervisor_submits_it_reports_progress_and_stops_on_the_marker(
        pipeline, kafka_broker, fresh_results_db, tmp_path):
    """spark-submit of the bundle with the SparkJob of include/streaming/app_events_jobs.py; the
    health check reads its three queries' progress; the STOP marker ends it with 0."""
    apps = tmp_path / "build"
    build_bundle(apps)
    db = fresh_results_db
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_CONF_DIR": str(write_spark_conf(StackConfig(home=tmp_path / "home"))),
           "DP_RESULTS_DB_URL": f"mysql://{db.user}:{quote(db.password)}@{db.host}:{db.port}/{db.database}"}
    status = tmp_path / "status"
    submitted = app_events_jobs.app_events_job(
        kafka_broker.bootstrap, pipeline.lake, f"file://{tmp_path}/checkpoints-{uuid.uuid4().hex[:6]}",
        status.as_uri(), "0.5", extra_args=["--source-topic", pipeline.source, "--dead-letter-topic",
                                            pipeline.dead_letters])
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    log_path = tmp_path / "app_events.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([spark_submit, "--master", "local[2]", *submitted.submit_args(apps.as_uri())],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        def alive():
            assert proc.poll() is None, f"the job exited with {proc.returncode}: {log_path.read_text()[-3000:]}"

        pipeline.produce(STATS_INPUT, raw=[b"{"])
        wait_for(lambda: pipeline.stats() == STATS_EXPECTED_1MIN, 300, "the stats in MySQL", tick=alive)
        wait_for(lambda: [b["reason"] for b in pipeline.dead_letter_bodies()] == ["invalid_json"], 120,
                 "the dead letter", tick=alive)

        def healthy() -> bool:
            try:
                report = health.check(status / "app_events", kafka_broker.bootstrap,
                                      app_events_jobs.QUERIES["app_events"], max_staleness_s=600, max_lag_records=0)
            except health.StreamingUnhealthy:
                return False
            return sorted(r.name for r in report) == sorted(app_events_jobs.QUERIES["app_events"])

        wait_for(healthy, 180, "the three queries reported without lag", tick=alive)
        (status / "app_events" / "STOP").touch()
        assert proc.wait(timeout=180) == 0, log_path.read_text()[-3000:]
        assert (status / "app_events" / "STOPPED").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
    assert sorted(r.event_id for r in pipeline.clean_rows()) == ["a", "b", "c", "d", "e"]
