"""App-events streaming: short-video engagement events to Kafka, and the long-running Spark job that
turns them into per-category window stats (MySQL) and clean Parquet (lake), supervised.

* `produce_app_events` (include/producers/app_events.py): `DP_APP_EVENTS_RATE` events a second
  (default 5) from `DP_APP_EVENTS_USERS` users, Zipf-skewed across categories and users, to
  `app-events` keyed by user id; `DP_APP_EVENTS_INVALID_SHARE` of them deliberately broken (default
  none). Runs as long as the job. The topics come from `platform_bootstrap` (a missing topic fails
  the task at once).
* `app_events_streaming` (spark_apps/streaming/app_events/job.py): validates every event against
  its schema in Spark SQL; bad ones to `app-events-dead-letter` with reason and source offset,
  counted per reason in MySQL `app_event_dead_letter_counts`; the clean events to the lake's
  `app_events/clean/` as Parquet partitioned by `event_date` (exactly once: the file sink's
  checkpoint); views, likes, average watch time and distinct users (approximate) per category and
  event-time window (`DP_APP_EVENTS_WINDOW`, 1 minute; watermark `DP_APP_EVENTS_WATERMARK`, 2
  minutes) in update mode, upserted into MySQL `app_event_category_stats` (category, window start).

Supervision as `weather_streaming`: the DAG runs continuously (`@continuous`, one run at a time);
the job is a SparkSubmitOperator (an EMR step with `DP_RUNNER=emr`) that lives as long as its
queries; when it dies (e.g. MySQL unreachable) its task fails and the retry resubmits it, resuming
from its checkpoints. Progress goes to `streaming/_status/app_events/` in the lake;
`app_events_streaming_health` reads it every 5 minutes. Graceful stop: `dp stream-stop`.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.app_events_jobs import APP_EVENTS_JOB, SOURCE_TOPIC
from include.streaming.metrics_jobs import bootstrap_servers

cfg = platform_settings.load()

with DAG(
    dag_id="app_events_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "app-events"],
) as dag:

    @task
    def produce_app_events() -> dict:
        """Events at the configured rate until the task is stopped, retried like the job: a run
        ends only when every task has, so a producer that stopped early would leave the job
        running with nothing to read."""
        from include.producers.app_events import run_for

        report = run_for(bootstrap_servers(cfg), SOURCE_TOPIC, None, cfg.app_events_rate, cfg.app_events_users,
                         cfg.app_events_invalid_share)
        print(f"produced {report}")
        return report

    produce_app_events()
    spark_job_tasks([APP_EVENTS_JOB], cfg, cluster_name="dataplatform-app-events-streaming", chain_jobs=False,
                    long_running=True)
