"""Job definition of the energy x weather pipeline, shared by its DAGs (no I/O at import)."""
from __future__ import annotations

import os

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import CHECKPOINTS, KAFKA, KAFKA_OPTIONS, STATUS, STREAM_CONF
from spark_apps.common.lake import join
from spark_apps.streaming.energy_weather.regions import (
    DEFAULT_WEATHER_AFTER,
    DEFAULT_WEATHER_BEFORE,
    format_region_cities,
    interval_seconds,
    parse_region_cities,
)

cfg = platform_settings.load()

JOB_NAME = "energy_weather_streaming"
READINGS_TOPIC = "energy-readings"
WEATHER_TOPIC = "weather-raw"
DEAD_LETTER_TOPIC = "energy-dead-letter"
# Which weather city each region gets (spark_apps/streaming/energy_weather/regions.py): the
# producer and the job read the same setting.
REGION_CITIES = parse_region_cities(os.environ.get("DP_ENERGY_REGION_CITIES"))
# Readings become final only when the watermark passes them (tens of minutes of event time):
# a micro-batch every 10 s is fresh enough and keeps the planning of two joins per batch down.
TRIGGER_SECONDS = os.environ.get("DP_ENERGY_TRIGGER_SECONDS", "10")
# The join's time range and watermarks (spark_apps/streaming/energy_weather/transforms.py).
BEFORE = os.environ.get("DP_ENERGY_WEATHER_BEFORE", DEFAULT_WEATHER_BEFORE)
AFTER = os.environ.get("DP_ENERGY_WEATHER_AFTER", DEFAULT_WEATHER_AFTER)
READINGS_WATERMARK = os.environ.get("DP_ENERGY_READINGS_WATERMARK", "30 minutes")
WEATHER_WATERMARK = os.environ.get("DP_ENERGY_WEATHER_WATERMARK", "30 minutes")
# The producer's range (a setting it cannot read fails the DAG's import, visibly in the UI).
BEFORE_S, AFTER_S = interval_seconds(BEFORE), interval_seconds(AFTER)
# The producer task: households reporting every interval (900 every 15 min: one reading a second).
HOUSEHOLDS = int(os.environ.get("DP_ENERGY_HOUSEHOLDS", "900"))
INTERVAL_MINUTES = int(os.environ.get("DP_ENERGY_INTERVAL_MINUTES", "15"))
INVALID_SHARE = float(os.environ.get("DP_ENERGY_INVALID_SHARE", "0.001"))
# query names of the job (spark_apps/streaming/energy_weather/job.py), per status folder
QUERIES = {"energy_weather": ["energy_joined", "energy_unmatched", "energy_dead_letters"]}


def energy_weather_job(bootstrap: str, lake_uri: str, checkpoints: str, status: str,
                       trigger_seconds: str = TRIGGER_SECONDS, region_cities: dict[str, int] | None = None,
                       extra_args=()) -> SparkJob:
    """The join job as the supervisor submits it (``extra_args`` last: they win)."""
    args = ["--bootstrap", bootstrap, "--lake", lake_uri, "--checkpoint", join(checkpoints, "energy_weather"),
            "--status-uri", join(status, "energy_weather"), "--trigger-seconds", trigger_seconds,
            "--readings-topic", READINGS_TOPIC, "--weather-topic", WEATHER_TOPIC,
            "--dead-letter-topic", DEAD_LETTER_TOPIC,
            "--region-cities", format_region_cities(region_cities or REGION_CITIES),
            "--before", BEFORE, "--after", AFTER,
            "--readings-watermark", READINGS_WATERMARK, "--weather-watermark", WEATHER_WATERMARK]
    if KAFKA_OPTIONS:
        args += ["--kafka-options", KAFKA_OPTIONS]
    return SparkJob(name=JOB_NAME, entry="spark_apps/streaming/energy_weather/job.py", args=[*args, *extra_args],
                    conf=STREAM_CONF)


ENERGY_WEATHER_JOB = energy_weather_job(KAFKA, cfg.lake_uri, CHECKPOINTS, STATUS)
