"""WebSocket streaming: the platform's WebSocket service, and two long-running Spark jobs, supervised.

* `ensure_websocket_service`: the WebSocket service (include/platform/stack/websocket.py: a JSON
  sample `{process_time_ms, threadname, memory_used_mb, event_time, seq, run_id}` every
  `DP_WEBSOCKET_INTERVAL_S`, 30 s by default) is started when it is not running and the URL
  (`DP_WEBSOCKET_URL`) is this machine's; `dp up` starts it too. A URL elsewhere is only checked.
* `websocket_ingest` (spark_apps/streaming/websocket/ingest.py): reads the WebSocket with a
  streaming Python Data Source, checks each message (bad ones to `websocket-dead-letter` with
  reason and raw text), writes the valid ones to `websocket-events` as **Avro** (`to_avro`, schema
  `spark_apps/streaming/websocket/schemas/websocket_event.v1.avsc`, named in the `avro.schema`
  header) and counts sequence gaps (messages lost while no reader was connected) in MySQL
  `websocket_ingest_runs`.
* `websocket_thread_stats` (spark_apps/streaming/websocket/thread_stats.py): `from_avro`, per
  `threadname` and 1-minute event-time window (2-minute watermark) avg/max/min process time and
  memory, total memory and count, upserted into MySQL `websocket_thread_stats` and published as
  JSON to `websocket-thread-stats`.

A WebSocket cannot be replayed: messages sent while the ingest job is down are lost (the gap
counts show how many); from `websocket-events` on, everything is replayable for the topic's
retention. Supervision as `metrics_streaming`: `@continuous`, a job that dies fails its task and
the retry resubmits it from its checkpoint; progress in `streaming/_status/websocket_*`, read by
`websocket_streaming_health`; graceful stop: `dp stream-stop websocket_ingest websocket_thread_stats`.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.websocket_jobs import INGEST_JOB, THREAD_STATS_JOB

cfg = platform_settings.load()

with DAG(
    dag_id="websocket_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "websocket", "avro"],
) as dag:

    @task(retries=3)
    def ensure_websocket_service() -> str:
        from include.platform.stack import websocket

        return websocket.ensure_reachable(cfg.websocket_url)

    jobs, _ = spark_job_tasks([INGEST_JOB, THREAD_STATS_JOB], cfg, cluster_name="dataplatform-websocket-streaming",
                              chain_jobs=False, long_running=True)
    ensure_websocket_service() >> jobs
