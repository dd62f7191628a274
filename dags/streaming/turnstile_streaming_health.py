"""Health of the turnstile streaming job, every 5 minutes.

`check_turnstile_streaming_health` reads the last progress of the job's two queries
(`turnstile_ridership`, `turnstile_dead_letters`; published to `streaming/_status/turnstile/` in the
lake) and the broker's end offsets of `turnstile-readings` (include/streaming/health.py), logs one
line per query, and **fails** when a query has not completed a batch for
`DP_TURNSTILE_MAX_STALENESS_S` (default 1800 s) while readings wait or after the job's heartbeat
stopped (a live query that has read everything runs no batch: idle, healthy), or lags
more than `DP_TURNSTILE_MAX_LAG` records (default 50 000).

`announce_new_windows` emits the `turnstile_windows` Asset event when the ridership query has
committed a batch (new or corrected window files in the lake) since the last event, and is skipped
otherwise: `turnstile_warehouse` runs on that event as well as daily.
"""
from __future__ import annotations

import os

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.streaming.assets import turnstile_windows
from include.streaming.metrics_jobs import STATUS, bootstrap_servers
from include.streaming.turnstile_jobs import QUERIES

cfg = platform_settings.load()
MAX_STALENESS_S = float(os.environ.get("DP_TURNSTILE_MAX_STALENESS_S", "1800"))
MAX_LAG = int(os.environ.get("DP_TURNSTILE_MAX_LAG", "50000"))

with DAG(
    dag_id="turnstile_streaming_health",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "health", "turnstile"],
) as dag:

    @task
    def check_turnstile_streaming_health() -> list[str]:
        from include.streaming import health

        return health.check_jobs(STATUS, bootstrap_servers(cfg), QUERIES, MAX_STALENESS_S, MAX_LAG, cfg.aws_conn_id)

    @task(outlets=[turnstile_windows])
    def announce_new_windows(ti=None) -> int:
        from include.streaming import health

        last = ti.xcom_pull(task_ids="announce_new_windows", include_prior_dates=True)
        return health.announce_new_batch(f"{STATUS}/turnstile", "turnstile_ridership", last, "the window files", cfg.aws_conn_id)

    # Independent: new window files are worth a warehouse run even when the job lags.
    check_turnstile_streaming_health()
    announce_new_windows()
