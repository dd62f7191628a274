"""Job definition of the app-events streaming pipeline, shared by its DAGs (no I/O at import)."""
from __future__ import annotations

import os

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import CHECKPOINTS, KAFKA, KAFKA_OPTIONS, STATUS, STREAM_CONF
from spark_apps.common.lake import join

cfg = platform_settings.load()

JOB_NAME = "app_events_streaming"
SOURCE_TOPIC = "app-events"
DEAD_LETTER_TOPIC = "app-events-dead-letter"
# Windows of a minute: a micro-batch every 5 s keeps the current window's row fresh in MySQL
# without planning empty batches back to back for three queries.
TRIGGER_SECONDS = os.environ.get("DP_APP_EVENTS_TRIGGER_SECONDS", "5")
WINDOW = os.environ.get("DP_APP_EVENTS_WINDOW", "1 minute")
WATERMARK = os.environ.get("DP_APP_EVENTS_WATERMARK", "2 minutes")
# query names of the job (spark_apps/streaming/app_events/job.py), per status folder
QUERIES = {"app_events": ["app_events_clean", "app_events_dead_letters", "app_events_category_stats"]}


def app_events_job(bootstrap: str, lake_uri: str, checkpoints: str, status: str,
                   trigger_seconds: str = TRIGGER_SECONDS, extra_args=()) -> SparkJob:
    """The streaming job as the supervisor submits it (``extra_args`` last: they win)."""
    args = ["--bootstrap", bootstrap, "--lake", lake_uri, "--checkpoint", join(checkpoints, "app_events"),
            "--status-uri", join(status, "app_events"), "--trigger-seconds", trigger_seconds,
            "--source-topic", SOURCE_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC,
            "--window", WINDOW, "--watermark", WATERMARK]
    if KAFKA_OPTIONS:
        args += ["--kafka-options", KAFKA_OPTIONS]
    return SparkJob(name=JOB_NAME, entry="spark_apps/streaming/app_events/job.py", args=[*args, *extra_args],
                    conf=STREAM_CONF)


APP_EVENTS_JOB = app_events_job(KAFKA, cfg.lake_uri, CHECKPOINTS, STATUS)
