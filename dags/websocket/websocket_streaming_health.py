"""Health of the WebSocket streaming jobs, every 5 minutes.

`check_websocket_streaming_health` reads the last progress of the jobs' queries
(`websocket_ingest`; `websocket_thread_stats`, `websocket_undecodable`; in `streaming/_status/`
of the lake) and the broker's end offsets of `websocket-events` (include/streaming/health.py),
logs one line per query, and **fails** when a query has not completed a batch for
`DP_WEBSOCKET_MAX_STALENESS_S` (default 600 s: a message comes every 30 s, and a query without
new records runs no batch) or lags more than `DP_WEBSOCKET_MAX_LAG` records (default 10 000).
Missing WebSocket messages (sequence gaps) are counted in MySQL `websocket_ingest_runs`.
"""
from __future__ import annotations

import os

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.streaming.metrics_jobs import STATUS, bootstrap_servers
from include.streaming.websocket_jobs import QUERIES

cfg = platform_settings.load()
MAX_STALENESS_S = float(os.environ.get("DP_WEBSOCKET_MAX_STALENESS_S", "600"))
MAX_LAG = int(os.environ.get("DP_WEBSOCKET_MAX_LAG", "10000"))

with DAG(
    dag_id="websocket_streaming_health",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "health", "websocket"],
) as dag:

    @task
    def check_websocket_streaming_health() -> list[str]:
        from include.streaming import health

        return health.check_jobs(STATUS, bootstrap_servers(cfg), QUERIES, MAX_STALENESS_S, MAX_LAG, cfg.aws_conn_id)

    check_websocket_streaming_health()
