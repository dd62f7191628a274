"""Job definitions of the metrics streaming pipeline, shared by its DAGs and by `dp`."""
from __future__ import annotations

import os

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from spark_apps.common.lake import join

cfg = platform_settings.load()

# The EMR cluster metrics_streaming creates for its jobs; metrics_streaming_health adds its
# totals step to it (it never creates a cluster of its own).
STREAMING_CLUSTER = "dataplatform-metrics-streaming"
CHECKPOINTS = join(cfg.lake_uri, "streaming", "_checkpoints")
STATUS = join(cfg.lake_uri, "streaming", "_status")


def bootstrap_servers(settings: platform_settings.Settings) -> str:
    """Bootstrap servers: DP_KAFKA_BOOTSTRAP when set, else the Airflow Kafka connection."""
    bootstrap = os.environ.get("DP_KAFKA_BOOTSTRAP")
    if bootstrap:
        return bootstrap
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(settings.kafka_conn_id).extra_dejson["bootstrap.servers"]


# Stateful streaming queries keep one state store per shuffle partition and touch every one
# of them in every micro-batch: Spark's default of 200 makes each batch take seconds on a
# laptop. One: at the local stack's rates a stateful task holds a few thousand rows, and
# every extra partition is one more task per stateful stage and micro-batch (1 instead of
# 2 lowered the bench's p99 latency from ~13 s to ~10.5 s). The number is fixed in the
# checkpoint when a query first starts (existing checkpoints keep theirs), so set it
# before the first run (DP_STREAM_SHUFFLE_PARTITIONS; e.g. 2-3x the cluster's cores on EMR).
#
# No-data micro-batches: by default a query with a watermark runs an extra micro-batch
# after each batch that moved the watermark, only to evict state; with 1 s triggers and
# live data that is nearly one extra (full-cost) batch per batch. Off, the eviction
# happens in the next batch with data; the outputs are the same (update-mode aggregates,
# dedup and append-mode rows are emitted when their data arrives, not on eviction).
#
# Polling: with back-to-back micro-batches (TRIGGER_SECONDS 0) a query with no new data
# asks its source again after `spark.sql.streaming.pollingDelay` (an internal setting,
# 10 ms by default: ~50 broker probes per second per idle query); 100 ms keeps an idle
# job at ~10 probes/s and delays the first batch after a quiet spell by at most 0.1 s.
STREAM_CONF = {
    "spark.sql.shuffle.partitions": os.environ.get("DP_STREAM_SHUFFLE_PARTITIONS", "1"),
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
    "spark.sql.streaming.pollingDelay": "100ms",
}

# The bootstrap address reaches spark-submit as a template over the Kafka connection, so
# the same DAG points at MSK by configuration.
KAFKA = "{{ conn.%s.extra_dejson['bootstrap.servers'] }}" % cfg.kafka_conn_id

# Micro-batches back to back for latency (0 s; DP_STREAM_TRIGGER_SECONDS, fractions allowed):
# a batch starts as soon as the previous one ends and records are waiting. With the former
# broker and connector, at 1 k events/s, 0 s gave the lowest p99 (3.8-4.9 s against 4.5-5.5 s
# for 0.25 s and 1 s triggers, one session). On Apache Kafka and Spark's connector only 0 s
# has been measured (p99 9.7 s at 1 k events/s, idle machine, README "Metrics streaming"):
# compare with bench/bench_streaming.py --trigger-seconds before changing the default.
TRIGGER_SECONDS = os.environ.get("DP_STREAM_TRIGGER_SECONDS", "0")
# Further Kafka client settings for Spark's connector (TLS/SASL on MSK; a JSON object, see
# spark_apps/streaming/kafka_io.py), passed as an argument so they also reach EMR steps.
KAFKA_OPTIONS = os.environ.get("DP_KAFKA_OPTIONS", "")


def _common_args(bootstrap: str, checkpoint: str, status: str, trigger_seconds: str, topics: dict[str, str],
                 extra_args) -> list[str]:
    args = ["--bootstrap", bootstrap, "--checkpoint", checkpoint, "--status-uri", status,
            "--trigger-seconds", trigger_seconds]
    args += [arg for role, topic in topics.items() for arg in (f"--{role}-topic", topic)]
    if KAFKA_OPTIONS:
        args += ["--kafka-options", KAFKA_OPTIONS]
    return args + list(extra_args)


def job_a(bootstrap: str, checkpoints: str, status: str, trigger_seconds: str = TRIGGER_SECONDS,
          topics: dict[str, str] | None = None, extra_args=()) -> SparkJob:
    """Job A as the supervisor submits it; ``topics`` by role (source, sink, dead-letter), else the
    jobs' defaults (the topics of include/platform/topics.py)."""
    return SparkJob(
        name="metrics_json_to_protobuf",
        entry="spark_apps/streaming/metrics/json_to_protobuf.py",
        args=_common_args(bootstrap, join(checkpoints, "json_to_protobuf"), join(status, "json_to_protobuf"),
                          trigger_seconds, topics or {}, extra_args),
        conf=STREAM_CONF,
    )


def job_b(bootstrap: str, lake_uri: str, checkpoints: str, status: str, trigger_seconds: str = TRIGGER_SECONDS,
          topics: dict[str, str] | None = None, extra_args=()) -> SparkJob:
    """Job B as the supervisor submits it; ``topics`` by role (source, dead-letter)."""
    return SparkJob(
        name="metrics_protobuf_to_lake_and_mysql",
        entry="spark_apps/streaming/metrics/protobuf_to_lake_and_mysql.py",
        args=["--lake", lake_uri, *_common_args(
            bootstrap, join(checkpoints, "protobuf_to_lake_and_mysql"), join(status, "protobuf_to_lake_and_mysql"),
            trigger_seconds, topics or {}, extra_args)],
        conf=STREAM_CONF,
    )


JOB_A = job_a(KAFKA, CHECKPOINTS, STATUS)
JOB_B = job_b(KAFKA, cfg.lake_uri, CHECKPOINTS, STATUS)
SERVER_TOTALS = SparkJob(
    name="metrics_server_totals",
    entry="spark_apps/streaming/metrics/aggregate_csv.py",
    args=["--lake", cfg.lake_uri],
)
# query names per job (spark_apps/streaming/metrics/*.py)
QUERIES = {
    "json_to_protobuf": ["metrics_json_to_protobuf"],
    "protobuf_to_lake_and_mysql": ["metrics_protobuf_to_lake_and_mysql"],
}
