"""Health of the metrics streaming jobs, every 5 minutes, and the per-server totals.

`check_streaming_health` reads each query's last progress (published by the jobs to
`streaming/_status/` in the lake, local or S3: last batch time, input and processing rates, end
offsets) and the broker's end offsets, logs one line per query, and **fails** when a
query has not completed a batch for `DP_STREAM_MAX_STALENESS_S` (default 300 s) or lags
more than `DP_STREAM_MAX_LAG` records (default 50 000).

`metrics_server_totals` then aggregates the CSV files per server into MySQL
`server_metric_totals` (`server_name, total_sum, count, average`, as in the seed). On EMR it
is a step on the streaming cluster (`DP_EMR_CLUSTER_ID`, else the running cluster
`metrics_streaming` created), which keeps a slot free for it: no cluster per run.
"""
from __future__ import annotations

import os

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.metrics_jobs import QUERIES, SERVER_TOTALS, STATUS, STREAMING_CLUSTER, bootstrap_servers

cfg = platform_settings.load()
MAX_STALENESS_S = float(os.environ.get("DP_STREAM_MAX_STALENESS_S", "300"))
MAX_LAG = int(os.environ.get("DP_STREAM_MAX_LAG", "50000"))

with DAG(
    dag_id="metrics_streaming_health",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "health", "metrics"],
) as dag:

    @task
    def check_streaming_health() -> list[str]:
        from include.streaming import health

        return health.check_jobs(STATUS, bootstrap_servers(cfg), QUERIES, MAX_STALENESS_S, MAX_LAG, cfg.aws_conn_id)

    first, _ = spark_job_tasks([SERVER_TOTALS], cfg, cluster_name=STREAMING_CLUSTER, on_running_cluster=True)
    check_streaming_health() >> first
