"""DAG integrity: every DAG in dags/ loads, follows the platform's rules, and parsing it
does no work (no sockets, no Spark, no database) so the dag-processor stays fast."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def dagbag():
    """The folder parsed with the local runner (the parse the rules below reuse)."""
    return _bag(*CONFIGURATIONS[0])


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())


def test_every_dag_file_defines_a_dag(dagbag):
    files_with_dags = {Path(dag.fileloc).resolve() for dag in dagbag.dags.values()}
    for path in DAG_FILES:
        if path.name.startswith("_"):
            continue
        assert path.resolve() in files_with_dags, f"{path.relative_to(ROOT)} defines no DAG"


def test_examples_are_not_loaded(dagbag):
    assert dagbag.dags, "no DAGs loaded"
    assert all(str(DAGS) in dag.fileloc for dag in dagbag.dags.values())


# Every (runner, air-quality mode) the DAG files render differently: the rules hold for each.
CONFIGURATIONS = [("local", "one_app"), ("local", "per_job"), ("emr", "one_app"), ("emr", "per_job")]
# Tasks that must not retry, by task id (or id suffix), and why.
NO_RETRY = {
    "create_emr_cluster": "a retry after a lost answer would start a second cluster",
    "_add_step": "a retried batch add-step would run the job twice",
}


def _no_retry_reason(task_id: str) -> str | None:
    return next((why for name, why in NO_RETRY.items() if task_id == name or (name.startswith("_")
                                                                              and task_id.endswith(name))), None)


def _load_bag(runner: str, mode: str):
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as env:
        env.setenv("DP_RUNNER", runner)
        env.setenv("DP_AIR_QUALITY_MODE", mode)
        # Rules, not a stopwatch: on a loaded machine an import may take longer than Airflow's
        # 30 s default (what parsing may import is checked below, without timing).
        env.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600")
        return DagBag(dag_folder=str(DAGS), bundle_path=ROOT / "dags")


_BAGS: dict = {}


def _bag(runner: str, mode: str):
    if (runner, mode) not in _BAGS:
        _BAGS[(runner, mode)] = _load_bag(runner, mode)
    return _BAGS[(runner, mode)]


# Every DAG the folder defines, however it names them (parsed once at collection, reused by the tests).
DAG_IDS = sorted(_bag(*CONFIGURATIONS[0]).dag_ids) or ["<no DAG loaded>"]


@pytest.mark.parametrize("runner,mode", CONFIGURATIONS, ids=[f"{r}-{m}" for r, m in CONFIGURATIONS])
@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_follows_platform_rules(dag_id, runner, mode):
    bag = _bag(runner, mode)
    assert bag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in bag.import_errors.items())
    dag = bag.dags.get(dag_id)  # get_dag() would query the metadata DB
    assert dag is not None, f"{dag_id} did not load"
    assert dag.tags, f"{dag_id}: add tags"
    assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id}: add a doc_md that says what it does"
    assert dag.catchup is False, f"{dag_id}: set catchup=False"
    task_ids = [t.task_id for t in dag.tasks]
    assert len(task_ids) == len(set(task_ids))
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: set an owner"
        if _no_retry_reason(task.task_id):
            assert task.retries == 0, f"{dag_id}.{task.task_id}: must not retry ({_no_retry_reason(task.task_id)})"
        else:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}: retries must be >= 1"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_schedule_is_explicit(path):
    """Airflow 3 defaults to schedule=None silently; every DAG must say what it wants."""
    calls = [
        node for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("DAG", "dag")
    ]
    assert calls, f"{path.name}: no DAG(...) or @dag(...)"
    for call in calls:
        names = {kw.arg for kw in call.keywords}
        assert "schedule" in names, f"{path.name}: pass schedule= explicitly"
        assert "catchup" in names, f"{path.name}: pass catchup= explicitly"


def test_spark_and_kafka_run_through_provider_operators(dagbag):
    from airflow.providers.standard.operators.bash import BashOperator

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if isinstance(task, BashOperator):
                command = str(task.bash_command)
                for tool in ("spark-submit", "kafka-topics", "aws emr", "aws s3"):
                    assert tool not in command, (
                        f"{dag.dag_id}.{task.task_id} wraps `{tool}` in a BashOperator: use the provider operator"
                    )



def test_supervised_streaming_jobs_use_the_streaming_connection(dagbag):
    """Long-running jobs (retried = resubmitted) go to `spark_streaming` (local[1] in the embedded
    stack), every other Spark job to `spark_default`."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    seen = {"spark_streaming": [], "spark_default": []}
    for dag in dagbag.dags.values():
        continuous = dag.schedule == "@continuous"
        for task in dag.tasks:
            if isinstance(task, SparkSubmitOperator):
                expected = "spark_streaming" if continuous else "spark_default"
                assert task._conn_id == expected, f"{dag.dag_id}.{task.task_id} runs on {task._conn_id}"
                seen[expected].append(task.task_id)
    assert len(seen["spark_streaming"]) >= 5 and seen["spark_default"], seen

def test_slots_hold_every_long_running_task(dagbag, tmp_path):
    """Every task of a continuous DAG (a supervised Spark job or its producer) holds an Airflow
    slot for as long as it runs, and every supervised Spark job one application's cores of the
    docker-compose Spark worker: both must leave room for the batch DAGs and the health checks
    (16 Airflow slots left them queued in the demo once the sixth continuous DAG came)."""
    import yaml
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from include.platform.stack.environment import stack_environment
    from include.platform.stack.service import StackConfig

    long_running = [t for d in dagbag.dags.values() if d.schedule == "@continuous" for t in d.tasks]
    streaming_apps = [t for t in long_running if isinstance(t, SparkSubmitOperator)]
    batch_room = 8  # slots for batch tasks and health checks beside them
    embedded = stack_environment(StackConfig(home=tmp_path), "mysql://u:p@h/db", "postgresql://u:p@h/db")
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    for where, parallelism in (("embedded stack", embedded["AIRFLOW__CORE__PARALLELISM"]),
                               ("docker-compose", compose["x-airflow-env"]["AIRFLOW__CORE__PARALLELISM"])):
        assert int(parallelism) >= len(long_running) + batch_room, (where, parallelism, len(long_running))

    conf = dict(line.split(None, 1) for line in (ROOT / "docker/spark/spark-defaults.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    command = compose["services"]["spark-worker"]["command"]

    def worker(flag: str) -> str:  # the compose default of "${VAR:-default}"
        return command[command.index(flag) + 1].split(":-")[-1].rstrip("}")

    applications = len(streaming_apps) + 1  # one batch job beside the streaming jobs
    assert int(worker("--cores")) >= applications * int(conf["spark.cores.max"]), [t.task_id for t in streaming_apps]
    assert int(worker("--memory").rstrip("g")) >= applications * int(conf["spark.executor.memory"].rstrip("g"))


PARSE_PROBE = r"""
import json, socket, sys, time
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:] if len(args) > 1 else args)[:200])
    raise OSError("network access at DAG parse time")
socket.socket.connect = lambda self, *a, **k: refuse(self, *a)
socket.socket.connect_ex = lambda self, *a, **k: refuse(self, *a)
socket.create_connection = lambda *a, **k: refuse(None, *a)
from airflow.dag_processing.dagbag import DagBag
from pathlib import Path
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
heavy = sorted(m for m in set(sys.modules) - before
               if m.split(".")[0] in ("pyspark", "pymysql", "MySQLdb", "confluent_kafka", "psycopg2", "duckdb", "moto"))
print(json.dumps({"attempts": attempts, "errors": bag.import_errors, "dags": len(bag.dags), "heavy": heavy}))
"""


def test_parsing_opens_no_socket_and_does_no_heavy_work(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["dags"] >= 1
    assert report["errors"] == {}
    assert report["attempts"] == [], f"DAG files opened sockets at parse time: {report['attempts']}"
    # "Fast" as a property, not a stopwatch: parsing must not import Spark, database
    # drivers or Kafka clients (those belong inside tasks).
    assert report["heavy"] == [], f"DAG parsing imported heavy modules: {report['heavy']}"
