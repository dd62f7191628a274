"""Server-metrics streaming: producer and both long-running Spark jobs, supervised.

* `produce_server_metrics`: publishes the seed's server metrics JSON to `metric-message`
  (one burst every 5 s, every host x five metrics), keyed by host, with delivery reports;
  long-running like the jobs, and retried like them.
  The topics come from `platform_bootstrap` (nothing here creates one; a missing topic
  fails the task at once).
* `metrics_json_to_protobuf` (job A): `metric-message` -> validated Protobuf on
  `metric-protobuf`; invalid records to `metric-dead-letter` with reason and offset.
* `metrics_protobuf_to_lake_and_mysql` (job B): `metric-protobuf` -> CSV per metric type
  in the lake (`streaming/metrics_csv/`) and per-minute aggregates per host and metric
  added into MySQL `metric_minute_aggregates` (once per micro-batch); records that are not
  valid Protobuf metrics to `metric-dead-letter`.

Both jobs read and write Kafka with Spark's own connector (`kafka` format); extra client
settings for a broker that needs them (TLS/SASL on MSK) come from `DP_KAFKA_OPTIONS`.

Supervision: the DAG runs continuously (`@continuous`, one run at a time). Each job is a
SparkSubmitOperator (an EMR step with `DP_RUNNER=emr`) that lives as long as its query;
when a job dies its task fails and the retry resubmits it, resuming from its checkpoint.
Progress goes to `streaming/_status/<job>/` in the lake; `metrics_streaming_health` reads
it every 5 minutes. Graceful stop: `dp stream-stop` (writes the STOP marker; the jobs stop
between micro-batches).
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.metrics_jobs import JOB_A, JOB_B, STREAMING_CLUSTER, bootstrap_servers

cfg = platform_settings.load()

with DAG(
    dag_id="metrics_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "metrics"],
) as dag:

    @task
    def produce_server_metrics(interval_s: float = 5.0) -> dict:
        """Bursts until the task is stopped, retried like the jobs. It lives as long as they do:
        a run of this DAG ends only when every task has, so a producer that stopped after an hour
        (or after its retries) would leave the jobs running with nothing to read."""
        from include.producers.metrics import run_bursts

        report = run_bursts(bootstrap_servers(cfg), "metric-message", bursts=None, interval_s=interval_s)
        print(f"produced {report}")
        return {"delivered": report.delivered, "failed": report.failed}

    produce_server_metrics()
    # Two independent long-running applications, not chained.
    spark_job_tasks([JOB_A, JOB_B], cfg, cluster_name=STREAMING_CLUSTER, chain_jobs=False,
                    long_running=True)
