"""Local Spark tasks from job definitions (include/platform/runners.py): supervised streaming jobs
go to the streaming connection with the streaming heap (``DP_SPARK_STREAMING_DRIVER_MEMORY``, 1g
in the embedded stack), batch jobs keep the default connection and heap."""
from __future__ import annotations

from datetime import datetime

import pytest

from include.platform import settings as platform_settings
from include.platform.runners import spark_job_tasks
from include.platform.spark_jobs import SparkJob

JOB = SparkJob(name="some_job", entry="spark_apps/some/job.py", args=["--x", "1"])


@pytest.mark.parametrize("memory", ["1g", None])
def test_streaming_jobs_get_their_connection_and_heap(monkeypatch, memory):
    from airflow.sdk import DAG

    monkeypatch.setenv("DP_RUNNER", "local")
    if memory:
        monkeypatch.setenv("DP_SPARK_STREAMING_DRIVER_MEMORY", memory)
    else:
        monkeypatch.delenv("DP_SPARK_STREAMING_DRIVER_MEMORY", raising=False)
    settings = platform_settings.load()
    with DAG("runners_probe", schedule=None, start_date=datetime(2026, 1, 1)):
        streaming, _ = spark_job_tasks([JOB], settings, "c", long_running=True)
    with DAG("runners_probe_batch", schedule=None, start_date=datetime(2026, 1, 1)):
        batch, _ = spark_job_tasks([JOB], settings, "c")
    assert (streaming._conn_id, streaming._driver_memory) == ("spark_streaming", memory)
    assert (batch._conn_id, batch._driver_memory) == ("spark_default", None)


def test_the_embedded_stack_sets_the_streaming_heap(tmp_path):
    from include.platform.stack.environment import stack_environment
    from include.platform.stack.service import StackConfig

    env = stack_environment(StackConfig(home=tmp_path), "mysql://u:p@h/db", "postgresql://u:p@h/db")
    assert env["DP_SPARK_STREAMING_DRIVER_MEMORY"] == "1g"
