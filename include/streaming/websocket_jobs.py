"""Job definitions of the WebSocket pipeline, shared by its DAGs (no I/O at import)."""
from __future__ import annotations

import os

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import CHECKPOINTS, KAFKA, KAFKA_OPTIONS, STATUS, STREAM_CONF
from spark_apps.common.lake import join

cfg = platform_settings.load()

EVENTS_TOPIC = "websocket-events"
STATS_TOPIC = "websocket-thread-stats"
DEAD_LETTER_TOPIC = "websocket-dead-letter"
# Messages come every 30 s by default: a micro-batch every 5 s keeps the delay to the topic low
# without planning empty batches back to back (an idle batch still costs ~0.3 s of driver time).
TRIGGER_SECONDS = os.environ.get("DP_WEBSOCKET_TRIGGER_SECONDS", "5")
WINDOW = os.environ.get("DP_WEBSOCKET_WINDOW", "1 minute")
WATERMARK = os.environ.get("DP_WEBSOCKET_WATERMARK", "2 minutes")
# query names per job (status folder)
QUERIES = {"websocket_ingest": ["websocket_ingest"],
           "websocket_thread_stats": ["websocket_thread_stats", "websocket_undecodable"]}


def _kafka_options() -> list[str]:
    return ["--kafka-options", KAFKA_OPTIONS] if KAFKA_OPTIONS else []


def ingest_job(url: str, bootstrap: str, checkpoints: str, status: str, trigger_seconds: str = TRIGGER_SECONDS,
               extra_args=()) -> SparkJob:
    """The ingest job (WebSocket -> Avro) as the supervisor submits it."""
    args = ["--url", url, "--bootstrap", bootstrap, "--checkpoint", join(checkpoints, "websocket_ingest"),
            "--status-uri", join(status, "websocket_ingest"), "--trigger-seconds", trigger_seconds,
            "--events-topic", EVENTS_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC, *_kafka_options()]
    return SparkJob(name="websocket_ingest", entry="spark_apps/streaming/websocket/ingest.py",
                    args=[*args, *extra_args], conf=STREAM_CONF)


def thread_stats_job(bootstrap: str, checkpoints: str, status: str, trigger_seconds: str = TRIGGER_SECONDS,
                     extra_args=()) -> SparkJob:
    """The thread-stats job (Avro -> MySQL + JSON) as the supervisor submits it."""
    args = ["--bootstrap", bootstrap, "--checkpoint", join(checkpoints, "websocket_thread_stats"),
            "--status-uri", join(status, "websocket_thread_stats"), "--trigger-seconds", trigger_seconds,
            "--source-topic", EVENTS_TOPIC, "--stats-topic", STATS_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC,
            "--window", WINDOW, "--watermark", WATERMARK, *_kafka_options()]
    return SparkJob(name="websocket_thread_stats", entry="spark_apps/streaming/websocket/thread_stats.py",
                    args=[*args, *extra_args], conf=STREAM_CONF)


INGEST_JOB = ingest_job(cfg.websocket_url, KAFKA, CHECKPOINTS, STATUS)
THREAD_STATS_JOB = thread_stats_job(KAFKA, CHECKPOINTS, STATUS)
