"""MTA turnstile streaming: the real week replayed into Kafka, and the long-running Spark job that
turns cumulative counters into windowed ridership in the lake and MySQL, supervised.

* `replay_turnstile_week`: publishes the real MTA week `dp demo-data` put in
  `$DP_HOME/incoming/turnstile/` (else the shared `../shared/data/mta_turnstile_sample/`; or
  `DP_TURNSTILE_SOURCE`) to `turnstile-readings` in event-time order, keyed by turnstile
  (`C/A:UNIT:SCP`), each row as JSON with the file's fields, at `DP_TURNSTILE_SPEEDUP` seconds of
  event time per second (default 1440: a day a minute; 0: as fast as possible). The topics come from
  `platform_bootstrap` (a missing topic fails the task at once).
* `turnstile_streaming` (spark_apps/streaming/turnstile/job.py): types every reading (bad ones to
  `turnstile-dead-letter` with reason and offset), turns each turnstile's readings into cleaned
  deltas in keyed state (`applyInPandasWithState`: absolute differences, deltas of 10,000 or more
  and across gaps over 24 h dropped and counted, no delta from a first reading, RECOVR AUD
  duplicates dropped), sums them per 4-hour event-time window, station and line with an 8-hour
  watermark (later readings to `turnstile-late`), and writes gzip CSV window files to
  `streaming/turnstile_windows/service_date=.../` and upserts MySQL `turnstile_ridership`.

Supervision as `metrics_streaming`: the DAG runs continuously (`@continuous`, one run at a time);
the job is a SparkSubmitOperator (an EMR step with `DP_RUNNER=emr`) that lives as long as its
queries; when it dies its task fails and the retry resubmits it, resuming from its checkpoints.
Progress goes to `streaming/_status/turnstile/` in the lake; `turnstile_streaming_health` reads it
every 5 minutes. Graceful stop: `dp stream-stop turnstile`.
"""
from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.metrics_jobs import bootstrap_servers
from include.streaming.turnstile_jobs import SOURCE_TOPIC, TURNSTILE_JOB

cfg = platform_settings.load()
SPEEDUP = float(os.environ.get("DP_TURNSTILE_SPEEDUP", "1440"))
SOURCE = os.environ.get("DP_TURNSTILE_SOURCE", "")

with DAG(
    dag_id="turnstile_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "turnstile"],
) as dag:

    @task(retries=3)
    def replay_turnstile_week() -> dict:
        """The week once per run. A second run replays readings the job has seen: those within the
        watermark are dropped as repeats, older ones go to `turnstile-late` (counted, not summed)."""
        from include.producers import turnstile

        report = turnstile.run_replay(bootstrap_servers(cfg), SOURCE_TOPIC, SOURCE or turnstile.demo_source(),
                                      speedup=SPEEDUP or None)
        print(f"produced {report.as_dict()}")
        return report.as_dict()

    replay_turnstile_week()
    spark_job_tasks([TURNSTILE_JOB], cfg, cluster_name="dataplatform-turnstile-streaming", chain_jobs=False,
                    long_running=True)
