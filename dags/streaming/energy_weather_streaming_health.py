"""Health of the energy x weather streaming job, every 5 minutes.

`check_energy_weather_streaming_health` reads the last progress of the job's three queries
(`energy_joined`, `energy_unmatched`, `energy_dead_letters`; published to
`streaming/_status/energy_weather/` in the lake, with each batch's observed counts and the join
state's size) and the broker's end offsets of `energy-readings` and `weather-raw`
(include/streaming/health.py), logs one line per query, and **fails** when a query has not
completed a batch for `DP_ENERGY_MAX_STALENESS_S` (default 1800 s: with 15-minute readings a quiet
spell is normal, and a query without new records runs no batch) or lags more than
`DP_ENERGY_MAX_LAG` records (default 10 000).

`announce_new_joins` emits the `energy_joined` Asset event when the join query has committed a
batch that wrote rows (new joined Parquet files in the lake; the join commits empty batches while it
waits for its watermarks) since the last event, and is skipped otherwise:
`energy_analysis` runs on that event as well as daily.
"""
from __future__ import annotations

import os

from airflow.sdk import DAG, task

from include.energy.jobs import energy_joined
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.streaming.energy_jobs import QUERIES
from include.streaming.metrics_jobs import STATUS, bootstrap_servers

cfg = platform_settings.load()
MAX_STALENESS_S = float(os.environ.get("DP_ENERGY_MAX_STALENESS_S", "1800"))
MAX_LAG = int(os.environ.get("DP_ENERGY_MAX_LAG", "10000"))

with DAG(
    dag_id="energy_weather_streaming_health",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "health", "energy"],
) as dag:

    @task
    def check_energy_weather_streaming_health() -> list[str]:
        from include.streaming import health

        return health.check_jobs(STATUS, bootstrap_servers(cfg), QUERIES, MAX_STALENESS_S, MAX_LAG, cfg.aws_conn_id)

    @task(outlets=[energy_joined])
    def announce_new_joins(ti=None) -> int:
        from include.streaming import health

        last = ti.xcom_pull(task_ids="announce_new_joins", include_prior_dates=True)
        return health.announce_new_batch(f"{STATUS}/energy_weather", "energy_joined", last, "the joined files", cfg.aws_conn_id)

    # Independent: new joined files are worth an analysis run even when the job lags.
    check_energy_weather_streaming_health()
    announce_new_joins()
