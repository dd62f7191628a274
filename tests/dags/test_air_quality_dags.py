"""The air-quality DAGs are chained by Assets and cover all eleven jobs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "air_quality"), bundle_path=ROOT / "dags")
    assert bag.import_errors == {}
    return bag.dags


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dag_table_list_matches_the_job_registry():
    from spark_apps.air_quality.jobs import JOBS

    dag_module = _module(ROOT / "dags" / "air_quality" / "air_quality_jobs.py")
    assert dag_module.AIR_QUALITY_TABLES == {name: job.table for name, job in JOBS.items()}
    assert len(JOBS) == 11


def test_assets_chain_land_convert_jobs(dags):
    from include.air_quality.assets import air_quality_parquet, air_quality_raw

    land, convert, jobs = dags["air_quality_land"], dags["air_quality_convert"], dags["air_quality_jobs"]
    assert air_quality_raw in land.get_task("land_exports").outlets
    assert air_quality_parquet in convert.get_task("air_quality_convert").outlets
    assert air_quality_raw.name in str(convert.timetable.asset_condition)
    assert air_quality_parquet.name in str(jobs.timetable.asset_condition)


def test_every_job_is_visible_as_its_own_task(dags):
    dag_module = _module(ROOT / "dags" / "air_quality" / "air_quality_jobs.py")
    task_ids = set(dags["air_quality_jobs"].task_ids)
    for name in dag_module.AIR_QUALITY_TABLES:
        assert f"results.{name}" in task_ids or name in task_ids


def test_the_conversion_writes_parquet_and_cassandra_in_two_independent_tasks(dags):
    convert = dags["air_quality_convert"]
    assert set(convert.task_ids) == {"air_quality_convert", "air_quality_to_cassandra"}
    assert all(not t.upstream_task_ids and not t.downstream_task_ids for t in convert.tasks)
    to_cassandra = convert.get_task("air_quality_to_cassandra")
    assert to_cassandra.application.endswith("/spark_apps/air_quality/to_cassandra.py")
    args = to_cassandra.application_args
    # Where Cassandra is travels as arguments (as in an EMR step), from the DP_CASSANDRA_* settings.
    assert args[args.index("--cassandra-port") + 1] == "9042"
    assert args[args.index("--max-bad-share") + 1] == convert.get_task("air_quality_convert").application_args[-1]


def test_the_batch_jobs_start_their_jvms_with_huge_methods_jit_compiled(dags):
    # spark_apps/common/jit.py: without it the conversion's parse runs interpreted (4x slower).
    tasks = [*dags["air_quality_convert"].tasks, *dags["air_quality_jobs"].tasks]
    submits = [t for t in tasks if hasattr(t, "application")]
    assert len(submits) >= 3
    for task in submits:
        assert task.conf["spark.driver.defaultJavaOptions"] == "-XX:-DontCompileHugeMethods", task.task_id
        assert task.conf["spark.executor.defaultJavaOptions"] == "-XX:-DontCompileHugeMethods", task.task_id
