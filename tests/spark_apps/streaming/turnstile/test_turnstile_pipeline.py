"""The turnstile job against the real broker and MariaDB: the shared real week end to end (MySQL and
lake totals equal to an independent plain-Python computation over the CSV), bad records
dead-lettered, late readings routed, replays changing nothing; and the job as the supervisor runs
it (spark-submit of the bundle) SIGKILLed mid-window and resubmitted: every window once, right.

Expected values come from the CSV (tests/.../turnstile_pipeline.expected_windows), never from the
job's code."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from include.platform.spark_jobs import build_bundle
from include.platform.stack import StackConfig
from include.platform.stack.environment import write_spark_conf
from include.producers import turnstile as producer
from include.streaming import health, turnstile_jobs
from tests.spark_apps.streaming.turnstile.turnstile_pipeline import (
    TurnstilePipeline,
    expected_windows,
    sample_rows,
    wait_for,
)

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(1200)]


@pytest.fixture
def pipeline(spark, kafka_broker, fresh_results_db, tmp_path):
    return TurnstilePipeline(spark, kafka_broker, fresh_results_db, tmp_path)


def reading(hour: int, entries: int, exits: int, scp: str = "00-00-00", day: int = 20) -> dict:
    return {"C/A": "Z001", "UNIT": "R999", "SCP": scp, "STATION": "TEST ST", "LINENAME": "Z", "DIVISION": "IND",
            "DATE": f"06/{day:02d}/2015", "TIME": f"{hour:02d}:00:00", "DESC": "REGULAR",
            "ENTRIES": f"{entries:010d}", "EXITS": f"{exits} "}


def produce(pipeline: TurnstilePipeline, bodies: list[dict], raw: list[bytes] = ()) -> None:
    records = [(f"{b['C/A']}:{b['UNIT']}:{b['SCP']}".encode(), json.dumps(b).encode(), 0) for b in bodies]
    pipeline.broker.produce(pipeline.source, records + [(b"bad", value, 0) for value in raw])


def test_the_real_week_gives_the_independently_computed_windows_in_mysql_and_the_lake(pipeline, kafka_broker):
    report = producer.run_replay(kafka_broker.bootstrap, pipeline.source)
    assert report.delivered == 1721
    expected = expected_windows(sample_rows())
    # Small batches: the week crosses many micro-batches (and windows across batches).
    pipeline.run_available_now(max_offsets_per_trigger=300)
    assert pipeline.windows_in_mysql() == expected
    assert pipeline.windows_in_lake() == expected
    week_entries = sum(v[0] for v in expected.values())
    assert week_entries > 100_000  # the week's riders, not raw odometer values
    assert {k[:2] for k in expected} == {("LEXINGTON AVE", "NQR456"), ("5 AVE-59 ST", "NQR"), ("57 ST-7 AVE", "NQR")}
    ridership_counts = [q for q in pipeline.quality() if q["query"] == "turnstile_ridership"]
    assert sum(q["readings"] for q in ridership_counts) == 1721
    assert sum(q["late"] for q in ridership_counts) == 0

    # Again from the checkpoints: nothing new; through a fresh checkpoint (a replay of the topic):
    # the same windows (recomputed, not added) and the same files (same names, same bytes).
    files = {p.name: p.read_bytes() for p in pipeline.window_files()}
    pipeline.run_available_now()
    pipeline.checkpoint += "_replayed"
    pipeline.run_available_now(max_offsets_per_trigger=300)
    assert pipeline.windows_in_mysql() == expected
    assert {p.name: p.read_bytes() for p in pipeline.window_files()} == files


def test_bad_records_are_dead_lettered_and_late_readings_go_to_the_late_topic(pipeline):
    # One partition, two records a micro-batch: batch 0 has 06/20 0 h and 4 h; batch 1 the next day's
    # 12 h and 20 h, after which the watermark (8 h lateness) is 06/21 12:00; batch 2 has a reading
    # of 06/20 20:00 (late: its window is final) and one of 06/21 16:00, within the watermark but
    # after the 20:00 one: it splits the 12->20 interval. Then the bad records.
    produce(pipeline, [reading(0, 100, 10), reading(4, 160, 30), reading(12, 300, 50, day=21),
                       reading(20, 320, 55, day=21), reading(20, 200, 40), reading(16, 315, 53, day=21)],
            raw=[b"{not json", b'{"C/A": "Z001", "UNIT": "R999"}',
                 json.dumps(reading(8, 0, 0) | {"ENTRIES": "12a"}).encode(),
                 json.dumps(reading(8, 0, 0) | {"DESC": "DOOR OPEN"}).encode()])
    pipeline.run_available_now(max_offsets_per_trigger=2)

    letters = [json.loads(r.value()) for r in pipeline.letters(pipeline.dead_letters)]
    assert sorted(d["reason"] for d in letters) == [
        "bad_counter:ENTRIES", "invalid_json", "missing_field:SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS",
        "unknown_desc:DOOR OPEN"]
    assert all(d["source_topic"] == pipeline.source for d in letters)
    [late] = [json.loads(r.value()) for r in pipeline.letters(pipeline.late)]
    assert (late["reason"], late["reading_time"], late["watermark"]) == ("late", "2015-06-20T20:00:00",
                                                                         "2015-06-21T12:00:00")
    # Windows: 06/20 04:00 has 0->4 h (60, 20); 06/21 12:00 has 06/20 4 h -> 06/21 12 h: a gap of
    # 32 h (dropped); 06/21 16:00 has 12->16 (15, 3) and 20:00 has 16->20 (5, 2) after the
    # correction (before it: 12->20 was 20, 5 in the 20:00 window).
    windows = pipeline.windows_in_mysql()
    key = ("TEST ST", "Z")
    assert windows[(*key, datetime(2015, 6, 20, 4))] == (60, 20, 1, 0, 0, 0)
    assert windows[(*key, datetime(2015, 6, 21, 12))] == (0, 0, 0, 0, 0, 1)
    assert windows[(*key, datetime(2015, 6, 21, 16))] == (15, 3, 1, 0, 0, 0)
    assert windows[(*key, datetime(2015, 6, 21, 20))] == (5, 2, 1, 0, 0, 0)
    assert pipeline.windows_in_lake() == {k: v for k, v in windows.items() if any(v)}
    dead = [q for q in pipeline.quality() if q["query"] == "turnstile_dead_letters"]
    assert sum(q["dead_letters"] for q in dead) == 4


SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")


@pytest.mark.timeout(3600)
def test_the_job_sigkilled_mid_window_and_resubmitted_gives_each_window_once(pipeline, kafka_broker,
                                                                            fresh_results_db, tmp_path):
    apps = tmp_path / "build"
    build_bundle(apps)
    db = fresh_results_db
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_CONF_DIR": str(write_spark_conf(StackConfig(home=tmp_path / "home"))),
           "DP_RESULTS_DB_URL": f"mysql://{db.user}:{quote(db.password)}@{db.host}:{db.port}/{db.database}"}
    status = tmp_path / "status"
    spec = turnstile_jobs.turnstile_job(
        kafka_broker.bootstrap, pipeline.lake, f"file://{tmp_path}/checkpoints", status.as_uri(), "0.5",
        extra_args=["--source-topic", pipeline.source, "--dead-letter-topic", pipeline.dead_letters,
                    "--late-topic", pipeline.late, "--max-offsets-per-trigger", "400"])
    processes = []

    def submit() -> subprocess.Popen:
        log = open(tmp_path / f"turnstile-{len(processes)}.log", "wb")
        proc = subprocess.Popen([SPARK_SUBMIT, "--master", "local[1]", *spec.submit_args(apps.as_uri())],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        processes.append(proc)
        return proc

    def alive(proc):
        def check():
            assert proc.poll() is None, f"the job exited with {proc.returncode}: see {tmp_path}/turnstile-*.log"
        return check

    def batches_done() -> int:
        folder = status / "turnstile"
        progress = [p for p in health.read_progress(folder) if p["name"] == "turnstile_ridership"] \
            if folder.exists() else []
        return progress[0]["batch_id"] if progress else -1

    expected = expected_windows(sample_rows())
    producer.run_replay(kafka_broker.bootstrap, pipeline.source)
    try:
        first = submit()
        # Generous guards: a spark-submit on a loaded two-core machine takes minutes to its first batch.
        wait_for(lambda: batches_done() >= 1, 1500, "the first micro-batches", tick=alive(first))
        os.killpg(first.pid, signal.SIGKILL)  # mid-week, mid-window: batches of 400 of the 1721 readings
        first.wait(timeout=30)
        assert pipeline.windows_in_mysql() != expected
        second = submit()
        wait_for(lambda: pipeline.windows_in_mysql() == expected, 1500, "every window after the restart",
                 interval_s=2, tick=alive(second))
        (status / "turnstile" / "STOP").touch()
        assert second.wait(timeout=180) == 0
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    assert pipeline.windows_in_mysql() == expected
    assert pipeline.windows_in_lake() == expected
