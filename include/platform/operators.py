"""Thin subclasses of provider operators, only where the provider cannot do a thing.

PlatformSparkSubmitOperator: Spark jobs need the results-database credentials. Passing
them through the templated ``env_vars`` field would put the password into the
task's rendered-template view and into the serialized DAG; instead they are read
from the Airflow connection at execute time and handed to spark-submit through
the process environment only (``DP_RESULTS_DB_URL``).

ReattachingEmrAddStepsOperator: a long-running (streaming) step is resubmitted by its task's
retry, but a retry can also follow a lost worker while the step still runs: the provider's
operator would then add a second step on the same checkpoint. This one first looks for
PENDING/RUNNING steps of the same names on the cluster and waits for those instead.
"""
from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator


class PlatformSparkSubmitOperator(SparkSubmitOperator):
    def __init__(self, *, mysql_conn_id: str | None = "mysql_results", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mysql_conn_id = mysql_conn_id

    def execute(self, context):
        if self.mysql_conn_id:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(self.mysql_conn_id)
            env = dict(self.env_vars or {})
            env["DP_RESULTS_DB_URL"] = conn.get_uri()
            self.env_vars = env
        return super().execute(context)


class ReattachingEmrAddStepsOperator(EmrAddStepsOperator):
    LIVE_STEP_STATES = ["PENDING", "RUNNING"]

    def live_steps(self, job_flow_id: str) -> list[str]:
        """Ids of the PENDING/RUNNING steps on the cluster named like one of ours."""
        names = {step["Name"] for step in self.steps}
        pages = self.hook.conn.get_paginator("list_steps").paginate(ClusterId=job_flow_id,
                                                                     StepStates=self.LIVE_STEP_STATES)
        return [step["Id"] for page in pages for step in page["Steps"] if step["Name"] in names]

    def execute(self, context):
        job_flow_id = self.job_flow_id or self.hook.get_cluster_id_by_name(str(self.job_flow_name), self.cluster_states)
        live = self.live_steps(job_flow_id) if job_flow_id else []
        if not live:
            return super().execute(context)
        self.log.info("Steps %s of the same name are still live on %s: waiting for them, adding none", live, job_flow_id)
        # The same wait as the provider's wait_for_completion (the platform runs these tasks so).
        waiter = self.hook.conn.get_waiter("step_complete")
        for step_id in live:
            wait(waiter=waiter, waiter_max_attempts=self.waiter_max_attempts, waiter_delay=self.waiter_delay,
                 args={"ClusterId": job_flow_id, "StepId": step_id}, failure_message=f"EMR Steps failed: {step_id}",
                 status_message="EMR Step status is", status_args=["Step.Status.State", "Step.Status.StateChangeReason"])
        return live
