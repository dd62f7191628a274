"""Job definitions of the turnstile pipeline, shared by its DAGs (no I/O at import)."""
from __future__ import annotations

import os

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import CHECKPOINTS, KAFKA, KAFKA_OPTIONS, STATUS, STREAM_CONF
from spark_apps.common.lake import join

cfg = platform_settings.load()

JOB_NAME = "turnstile_streaming"
SOURCE_TOPIC = "turnstile-readings"
DEAD_LETTER_TOPIC = "turnstile-dead-letter"
LATE_TOPIC = "turnstile-late"
# A replay at a day a minute brings a 4-hour window every 10 s: a micro-batch every 10 s keeps the
# windows current without planning empty batches back to back.
TRIGGER_SECONDS = os.environ.get("DP_TURNSTILE_TRIGGER_SECONDS", "10")
WINDOW = os.environ.get("DP_TURNSTILE_WINDOW", "4 hours")
LATENESS = os.environ.get("DP_TURNSTILE_LATENESS", "8 hours")
# query names of the job (spark_apps/streaming/turnstile/job.py), per status folder
QUERIES = {"turnstile": ["turnstile_ridership", "turnstile_dead_letters"]}


def turnstile_job(bootstrap: str, lake_uri: str, checkpoints: str, status: str,
                  trigger_seconds: str = TRIGGER_SECONDS, extra_args=()) -> SparkJob:
    """The streaming job as the supervisor submits it (``extra_args`` last: they win)."""
    args = ["--bootstrap", bootstrap, "--lake", lake_uri, "--checkpoint", join(checkpoints, "turnstile"),
            "--status-uri", join(status, "turnstile"), "--trigger-seconds", trigger_seconds,
            "--source-topic", SOURCE_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC, "--late-topic", LATE_TOPIC,
            "--window", WINDOW, "--lateness", LATENESS]
    if KAFKA_OPTIONS:
        args += ["--kafka-options", KAFKA_OPTIONS]
    return SparkJob(name=JOB_NAME, entry="spark_apps/streaming/turnstile/job.py", args=[*args, *extra_args],
                    conf=STREAM_CONF)


TURNSTILE_JOB = turnstile_job(KAFKA, cfg.lake_uri, CHECKPOINTS, STATUS)
# The daily warehouse model: every service date of the lake's window files, replaced in MySQL.
WAREHOUSE_JOB = SparkJob(name="turnstile_warehouse", entry="spark_apps/streaming/turnstile/warehouse.py",
                         args=["--lake", cfg.lake_uri])
