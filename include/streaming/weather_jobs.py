"""Job definition of the weather streaming pipeline, shared by its DAGs (no I/O at import)."""
from __future__ import annotations

import os

from include.cassandra import job_arguments as cassandra_job_arguments
from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import CHECKPOINTS, KAFKA, KAFKA_OPTIONS, STATUS, STREAM_CONF
from spark_apps.common.lake import join

cfg = platform_settings.load()

JOB_NAME = "weather_streaming"
# Weather arrives slowly (a response per city every few minutes at most): a micro-batch every
# 10 s keeps the rows fresh without planning empty batches back to back.
TRIGGER_SECONDS = os.environ.get("DP_WEATHER_TRIGGER_SECONDS", "10")
SOURCE_TOPIC = "weather-raw"
DEAD_LETTER_TOPIC = "weather-dead-letter"
# query names of the job (spark_apps/streaming/weather/job.py), per status folder
QUERIES = {"weather": ["weather_observations", "weather_hourly"]}


def weather_job(bootstrap: str, checkpoints: str, status: str, settings: platform_settings.Settings,
                trigger_seconds: str = TRIGGER_SECONDS, extra_args=()) -> SparkJob:
    """The weather job as the supervisor submits it. Where Cassandra is and how to reach it
    (contact points, port, local DC, TLS, the name of the credentials' secret) travels as
    arguments, so EMR steps get it too; credentials never do (the job reads them from the
    environment or Secrets Manager: spark_apps/common/cassandra.py)."""
    args = ["--bootstrap", bootstrap, "--checkpoint", join(checkpoints, "weather"),
            "--status-uri", join(status, "weather"), "--trigger-seconds", trigger_seconds,
            "--source-topic", SOURCE_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC,
            *cassandra_job_arguments(settings)]
    if KAFKA_OPTIONS:
        args += ["--kafka-options", KAFKA_OPTIONS]
    return SparkJob(name=JOB_NAME, entry="spark_apps/streaming/weather/job.py", args=[*args, *extra_args],
                    conf=STREAM_CONF)


WEATHER_JOB = weather_job(KAFKA, CHECKPOINTS, STATUS, cfg)
