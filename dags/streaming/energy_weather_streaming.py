"""Energy x weather streaming: household smart-meter readings to Kafka, and the long-running Spark
job that joins them with the weather of their region into the lake, supervised.

* `produce_energy` (include/producers/energy.py): `DP_ENERGY_HOUSEHOLDS` households (default 900)
  report every `DP_ENERGY_INTERVAL_MINUTES` (15) to `energy-readings`, keyed by household, with
  daily and weekly cycles, gaps, late readings and a temperature term that follows the weather
  their region gets: the producer reads `weather-raw` itself (the nearest observation of the
  region's city inside the join's range). Regions: `DP_ENERGY_REGION_CITIES` (region=city_id,...),
  of which the task uses those whose city the weather feed carries (`DP_WEATHER_CITY_IDS` with
  `OPENWEATHER_API_KEY`, else the recorded responses' Dublin CA, 5344157).
* `energy_weather_streaming` (spark_apps/streaming/energy_weather/job.py): bad readings to
  `energy-dead-letter` with reason and offset; a stream-stream left outer join of the readings and
  the weather (watermarks on both sides, weather within [reading - `DP_ENERGY_WEATHER_BEFORE`,
  reading + `DP_ENERGY_WEATHER_AFTER`], default 60 and 10 minutes), the nearest observation per
  reading to `energy/joined/` in the lake, readings without weather in range to `energy/unmatched/`
  (Parquet by event date, exactly once through the checkpoints).

**No weather producer here**: the weather comes from `weather_streaming`'s `produce_weather`,
which publishes `weather-raw` for every consumer of the topic; turn that DAG on too. A second
producer on the same topic would publish every observation twice (a replay restamps each response
with the time it is sent: twice the observations, twice the join state) and, with an API key, spend
the free plan's 60 calls a minute twice. Without weather every reading ends in `energy/unmatched/`
(counted), none is lost.

Supervision as `weather_streaming`: `@continuous`, one run at a time; the job is a
SparkSubmitOperator (an EMR step with `DP_RUNNER=emr`) living as long as its queries; when it dies
its task fails and the retry resubmits it, resuming from its checkpoints. Progress goes to
`streaming/_status/energy_weather/`; `energy_weather_streaming_health` reads it every 5 minutes.
Graceful stop: `dp stream-stop`.
"""
from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.streaming.energy_jobs import (
    AFTER_S,
    BEFORE_S,
    ENERGY_WEATHER_JOB,
    HOUSEHOLDS,
    INTERVAL_MINUTES,
    INVALID_SHARE,
    READINGS_TOPIC,
    REGION_CITIES,
    WEATHER_TOPIC,
)
from include.streaming.metrics_jobs import bootstrap_servers

cfg = platform_settings.load()
RECORDED_CITY_IDS = (5344157,)  # the recorded responses the weather producer replays without a key

with DAG(
    dag_id="energy_weather_streaming",
    doc_md=__doc__,
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1000, "retry_delay": timedelta(seconds=20)},
    tags=["streaming", "kafka", "spark", "energy", "weather"],
) as dag:

    @task
    def produce_energy() -> dict:
        """Live readings until the task is stopped, retried like the job (a run ends only when every
        task has: a producer that stopped early would leave the job running with nothing to read)."""
        from include.producers.energy import run
        from include.producers.weather import API_KEY_ENV
        from spark_apps.streaming.energy_weather.regions import regions_of_cities

        feed = ([int(c) for c in cfg.weather_city_ids.split(",") if c.strip()] if os.environ.get(API_KEY_ENV)
                else RECORDED_CITY_IDS)
        regions = regions_of_cities(REGION_CITIES, feed) or REGION_CITIES
        report = run(bootstrap_servers(cfg), READINGS_TOPIC, HOUSEHOLDS, INTERVAL_MINUTES, regions,
                     invalid_share=INVALID_SHARE, weather_topic=WEATHER_TOPIC,
                     weather_before_s=BEFORE_S, weather_after_s=AFTER_S).as_dict()
        print(f"produced {report}")
        return report

    produce_energy()
    spark_job_tasks([ENERGY_WEATHER_JOB], cfg, cluster_name="dataplatform-energy-weather-streaming",
                    chain_jobs=False, long_running=True)
