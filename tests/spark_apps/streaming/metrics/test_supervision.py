"""Both jobs as the supervisor runs them (spark-submit of the bundle, from the SparkJob definitions
of include/streaming/metrics_jobs.py), against the real broker and MySQL: each is SIGKILLed in
the middle of a backlog and resubmitted - what the metrics_streaming DAG's task retry does - and
resumes from its checkpoint; the health check sees the lag meanwhile; the STOP marker ends both
gracefully with exit code 0. Every event the producer sent is then counted exactly once in MySQL
and in the lake files (the truth is the producer's record, not the jobs' progress files)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from include.platform.spark_jobs import build_bundle
from include.platform.stack import StackConfig
from include.platform.stack.environment import write_spark_conf
from include.streaming import health, metrics_jobs
from tests.spark_apps.streaming.metrics.pipeline import Pipeline, assert_results_exact, wait_for

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(900)]

SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
QUERY_A, QUERY_B = metrics_jobs.QUERIES["json_to_protobuf"][0], metrics_jobs.QUERIES["protobuf_to_lake_and_mysql"][0]
# Small micro-batches, so that the backlog takes many of them and a kill lands in the middle.
BATCH = ["--max-offsets-per-trigger", "25"]


class Supervisor:
    """Submits jobs like the local runner (spark-submit, own process group) and kills them."""

    def __init__(self, tmp_path: Path, db):
        self.tmp_path = tmp_path
        self.apps = tmp_path / "build"
        build_bundle(self.apps)
        # The stack's Spark configuration (spark.jars: the pinned Kafka connector), as `dp up` writes it.
        conf_dir = write_spark_conf(StackConfig(home=tmp_path / "home"))
        self.env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_CONF_DIR": str(conf_dir),
                    "DP_RESULTS_DB_URL": f"mysql://{db.user}:{quote(db.password)}@{db.host}:{db.port}/{db.database}"}
        self.processes: list[subprocess.Popen] = []

    def submit(self, job) -> subprocess.Popen:
        log = open(self.tmp_path / f"{job.name}-{len(self.processes)}.log", "wb")
        argv = [SPARK_SUBMIT, "--master", "local[1]", *job.submit_args(self.apps.as_uri())]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.processes.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def alive(self, *procs) -> None:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[-1]} exited with {proc.returncode}: see {self.tmp_path}/*.log"

    def cleanup(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                self.kill(proc)


@pytest.fixture
def supervisor(tmp_path, fresh_results_db):
    supervisor = Supervisor(tmp_path, fresh_results_db)
    yield supervisor
    supervisor.cleanup()


def consumed(status: Path, query: str) -> int:
    """Source records the query has committed, by its last progress file (0 before the first)."""
    progress = [p for p in health.read_progress(status) if p["name"] == query] if status.exists() else []
    return sum(health.consumed_kafka_offsets(progress[0]).values()) if progress else 0


def test_jobs_sigkilled_mid_backlog_are_resubmitted_and_count_every_event_once(
        spark, kafka_broker, fresh_results_db, tmp_path, supervisor):
    pipeline = Pipeline(spark, kafka_broker, fresh_results_db, tmp_path)
    pipeline.produce(seed=41, offsets_s=list(range(0, 200, 10)))  # a backlog of 20 bursts: 300 events
    status = tmp_path / "status"
    bootstrap = kafka_broker.bootstrap
    job_a = metrics_jobs.job_a(
        bootstrap, pipeline.checkpoints, status.as_uri(), "0.5", extra_args=BATCH,
        topics={"source": pipeline.source, "sink": pipeline.protobuf, "dead-letter": pipeline.dead_letters})
    job_b = metrics_jobs.job_b(
        bootstrap, pipeline.lake, pipeline.checkpoints, status.as_uri(), "0.5", extra_args=BATCH,
        topics={"source": pipeline.protobuf, "dead-letter": pipeline.dead_letters})
    status_a, status_b = status / "json_to_protobuf", status / "protobuf_to_lake_and_mysql"
    total, valid = len(pipeline.events), len(pipeline.valid_events())

    first_a, first_b = supervisor.submit(job_a), supervisor.submit(job_b)
    wait_for(lambda: consumed(status_a, QUERY_A) >= 50, 300, "job A's first batches",
             tick=lambda: supervisor.alive(first_a, first_b))
    supervisor.kill(first_a)  # in the middle of the backlog (back-to-back batches of 25)
    assert consumed(status_a, QUERY_A) < total
    with pytest.raises(health.StreamingUnhealthy, match=f"{QUERY_A}: lag [1-9]"):
        health.check(status_a, bootstrap, [QUERY_A], max_staleness_s=600, max_lag_records=0)
    second_a = supervisor.submit(job_a)

    wait_for(lambda: pipeline.counted_in_mysql() > 0, 300, "job B's first batch in MySQL",
             tick=lambda: supervisor.alive(second_a, first_b))
    supervisor.kill(first_b)
    assert pipeline.counted_in_mysql() < valid, "job B was to be killed before the end of its input"
    second_b = supervisor.submit(job_b)

    invalid = total - valid

    def settled():
        supervisor.alive(second_a, second_b)
        letters = {(p, o) for t, p, o, _ in pipeline.dead_letter_reasons() if t == pipeline.source}
        return pipeline.counted_in_mysql() >= valid and len(letters) >= invalid

    wait_for(settled, 400, "every event through both jobs", interval_s=1)

    def caught_up(folder: Path, query: str) -> bool:  # job B may still be reading job A's replayed copies
        [ok] = health.check(folder, bootstrap, [query], max_staleness_s=600, max_lag_records=10**9)
        return ok.lag_records == 0

    for folder, query in ((status_a, QUERY_A), (status_b, QUERY_B)):
        wait_for(lambda: caught_up(folder, query), 120, f"{query} to have no lag", interval_s=1,  # noqa: B023
                 tick=lambda: supervisor.alive(second_a, second_b))

    # Graceful stop: the marker ends each job between micro-batches, with exit code 0.
    for folder in (status_a, status_b):
        (folder / "STOP").touch()
    assert second_a.wait(timeout=180) == 0 and second_b.wait(timeout=180) == 0
    republished = len(kafka_broker.consume_all(pipeline.protobuf, partitions=2)) - valid
    print(f"{total} events, {valid} valid; job A republished {republished} after its SIGKILL (job B drops them)")
    assert_results_exact(pipeline, dead_letters_once=False)
