"""Health of the app-events streaming job, every 5 minutes.

`check_app_events_streaming_health` reads the last progress of the job's three queries
(`app_events_clean`, `app_events_dead_letters`, `app_events_category_stats`; published to
`streaming/_status/app_events/` in the lake) and the broker's end offsets of `app-events`
(include/streaming/health.py), logs one line per query, and **fails** when a query has not completed
a batch for `DP_APP_EVENTS_MAX_STALENESS_S` (default 600 s; a query that has read everything while
its job's heartbeat is fresh is idle, not stale) or lags more than `DP_APP_EVENTS_MAX_LAG` records
(default 50 000: a few minutes of a busy producer).
"""
from __future__ import annotations

import os

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.streaming.app_events_jobs import QUERIES
from include.streaming.metrics_jobs import STATUS, bootstrap_servers

cfg = platform_settings.load()
MAX_STALENESS_S = float(os.environ.get("DP_APP_EVENTS_MAX_STALENESS_S", "600"))
MAX_LAG = int(os.environ.get("DP_APP_EVENTS_MAX_LAG", "50000"))

with DAG(
    dag_id="app_events_streaming_health",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "health", "app-events"],
) as dag:

    @task
    def check_app_events_streaming_health() -> list[str]:
        from include.streaming import health

        return health.check_jobs(STATUS, bootstrap_servers(cfg), QUERIES, MAX_STALENESS_S, MAX_LAG, cfg.aws_conn_id)

    check_app_events_streaming_health()
