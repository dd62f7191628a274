"""Turnstile warehouse model, daily: from the lake's window files into MySQL.

`turnstile_warehouse` (spark_apps/streaming/turnstile/warehouse.py) reads the gzip CSV window files
the streaming job writes (`streaming/turnstile_windows/service_date=.../`: what each micro-batch
added to each 4-hour window, corrections included), sums them per window and builds
`turnstile_station_day` (entries and exits per station, line and service date),
`turnstile_busiest_stations` (each day's top 10 by entries + exits) and `turnstile_hourly_profile`
(entries and exits per weekday and hour of day). Every service date in the lake is rebuilt and
replaced as a whole (staged, one transaction per table): a rerun replaces, a late correction
updates, nothing is appended twice.

Schedule: daily, and whenever `turnstile_streaming_health` announces new window files (the
`turnstile_windows` Asset), so the model follows a replay within minutes.
"""
from __future__ import annotations

from airflow.sdk import DAG
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.assets import turnstile_windows
from include.streaming.turnstile_jobs import WAREHOUSE_JOB

cfg = platform_settings.load()

with DAG(
    dag_id="turnstile_warehouse",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("@daily", timezone="UTC"),
                                 assets=[turnstile_windows]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "turnstile", "warehouse"],
) as dag:
    spark_job_tasks([WAREHOUSE_JOB], cfg, cluster_name="dataplatform-turnstile-warehouse")
