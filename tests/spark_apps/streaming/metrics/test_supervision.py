"""Job A as Airflow runs it (spark-submit of the bundle, from its SparkJob definition),
against the real broker: progress is published, the health check sees lag, a SIGKILL
mid-stream loses nothing after a restart from the checkpoint, and the STOP marker ends
the job gracefully with exit code 0."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.platform.spark_jobs import SparkJob, build_bundle
from include.producers.metrics import run_bursts
from include.streaming import health

SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
QUERY = "metrics_json_to_protobuf"


def _wait(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _consumed(status_dir: Path) -> int:
    path = status_dir / f"{QUERY}.json"
    if not path.exists():
        return 0
    progress = json.loads(path.read_text())
    return sum(health._end_offsets(progress).values())


@pytest.fixture
def job_a(kafka_broker, tmp_path):
    topics = {role: kafka_broker.create_topic(partitions=2) for role in ("source", "sink", "dead_letter")}
    apps = tmp_path / "build"
    build_bundle(apps)
    status = tmp_path / "status"
    job = SparkJob(
        name="metrics_json_to_protobuf",
        entry="spark_apps/streaming/metrics/json_to_protobuf.py",
        args=["--bootstrap", kafka_broker.bootstrap, "--source-topic", topics["source"],
              "--sink-topic", topics["sink"], "--dead-letter-topic", topics["dead_letter"], "--checkpoint", (tmp_path / "checkpoint").as_uri(),
              "--status-uri", status.as_uri(), "--trigger-seconds", "2"],
        conf={"spark.ui.enabled": "false"},
    )
    argv = [SPARK_SUBMIT, "--master", "local[1]", *job.submit_args(apps.as_uri())]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    processes = []

    def start():
        log = open(tmp_path / f"job-a-{len(processes)}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        processes.append(proc)
        return proc

    yield start, status, topics
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_supervised_job_survives_sigkill_and_stops_gracefully(job_a, kafka_broker):
    start, status, topics = job_a
    produced = run_bursts(kafka_broker.bootstrap, topics["source"], bursts=2, interval_s=0, hosts=3, seed=1)
    assert produced.delivered == 30

    first = start()
    _wait(lambda: _consumed(status) == 30, 240, "job A to consume the first 30 events")
    [ok] = health.check(status, kafka_broker.bootstrap, [QUERY], max_staleness_s=600, max_lag_records=0)
    assert ok.lag_records == 0

    # Kill the job hard while new data arrives: the health check must see the lag ...
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    more = run_bursts(kafka_broker.bootstrap, topics["source"], bursts=2, interval_s=0, hosts=3, seed=2)
    assert more.delivered == 30
    with pytest.raises(health.StreamingUnhealthy, match="lag 30 records"):
        health.check(status, kafka_broker.bootstrap, [QUERY], max_staleness_s=600, max_lag_records=0)

    # ... and the resubmitted job resumes from its checkpoint and catches up.
    second = start()
    _wait(lambda: _consumed(status) == 60, 240, "the restarted job to catch up")

    # Graceful stop: marker -> the job ends between batches with exit code 0.
    (status / "STOP").touch()
    assert second.wait(timeout=180) == 0

    # Nothing lost: every source record reached the Protobuf topic (A is at-least-once;
    # duplicates are removed by job B, see its tests).
    from spark_apps.streaming.metrics import metric_pb2

    seen = set()
    for message in kafka_broker.consume_all(topics["sink"], partitions=2):
        metric = metric_pb2.Metric()
        metric.ParseFromString(message.value())
        seen.add((metric.source_partition, metric.source_offset))
    expected = set()
    for partition, end in health._end_offsets(json.loads((status / f"{QUERY}.json").read_text())).items():
        expected |= {(partition[1], offset) for offset in range(end)}
    assert len(expected) == 60
    assert seen == expected
