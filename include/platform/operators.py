"""Thin subclasses of provider operators, only where the provider cannot do a thing.

PlatformSparkSubmitOperator: Spark jobs need the results-database credentials. Passing
them through the templated ``env_vars`` field would put the password into the
task's rendered-template view and into the serialized DAG; instead they are read
from the Airflow connection at execute time and handed to spark-submit through
the process environment only (``DP_RESULTS_DB_URL``).
"""
from __future__ import annotations

from typing import Any

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
