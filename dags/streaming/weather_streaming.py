"""Weather streaming: OpenWeatherMap responses to Kafka, and the long-running Spark job that
writes them to Cassandra (and MySQL), supervised.

* `produce_weather`: with `OPENWEATHER_API_KEY` set (in the task's environment), polls the
  current-weather API for `DP_WEATHER_CITY_IDS` every `DP_WEATHER_POLL_INTERVAL_S` (free plan:
  at most 60 calls a minute, backoff on 429/5xx); without a key it replays the recorded real
  responses (`include/sample_data/openweather_responses/`) in a loop at `DP_WEATHER_REPLAY_RATE` a
  second, stamped with the time they are sent (`DP_WEATHER_REPLAY_TIMESTAMPS=original` keeps
  their own). To `weather-raw`, keyed by city id, the JSON unchanged; runs as long as the job. The
  topics come from `platform_bootstrap` (a missing topic fails the task at once), so do the
  Cassandra keyspace `weather` and its tables.
* `weather_streaming` (spark_apps/streaming/weather/job.py): validates every response against
  the current-weather schema in Spark SQL; bad ones to `weather-dead-letter` with reason and
  offset; each observation (one per city and `dt`) upserted into Cassandra
  `weather.observations`; hourly aggregates per city (event-time windows, watermark) upserted
  into Cassandra `weather.hourly` and MySQL `weather_hourly`. Writes from foreachBatch with the
  Python Cassandra driver (no Spark Cassandra Connector supports Spark 4).

Supervision as `metrics_streaming`: the DAG runs continuously (`@continuous`, one run at a
time); the job is a SparkSubmitOperator (an EMR step with `DP_RUNNER=emr`) that lives as long
as its queries; when it dies (e.g. Cassandra unreachable) its task fails and the retry
resubmits it, resuming from its checkpoints. Progress goes to `streaming/_status/weather/` in
the lake; `weather_streaming_health` reads it every 5 minutes. Graceful stop: `dp stream-stop`.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.metrics_jobs import bootstrap_servers
from include.streaming.weather_jobs import SOURCE_TOPIC, WEATHER_JOB

cfg = platform_settings.load()

with DAG(
    dag_id="weather_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "cassandra", "weather"],
) as dag:

    @task
    def produce_weather() -> dict:
        """Polling (with a key) or replaying the recorded responses (without) until the task is
        stopped, retried like the job: a run ends only when every task has, so a producer that
        stopped early would leave the job running with nothing to read."""
        from include.producers.weather import run_for

        cities = [int(c) for c in cfg.weather_city_ids.split(",") if c.strip()]
        report = run_for(bootstrap_servers(cfg), SOURCE_TOPIC, None, cities, cfg.weather_poll_interval_s,
                         cfg.weather_replay_rate, cfg.weather_replay_timestamps)
        print(f"produced {report}")
        return report

    produce_weather()
    spark_job_tasks([WEATHER_JOB], cfg, cluster_name="dataplatform-weather-streaming", chain_jobs=False,
                    long_running=True)
