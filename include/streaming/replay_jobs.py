"""The Kappa replay job as its DAG submits it (no I/O at import)."""
from __future__ import annotations

from include.platform.spark_jobs import SparkJob
from include.streaming.metrics_jobs import KAFKA, KAFKA_OPTIONS

# The topic and the version come from the trigger form (the DAG's Params), templated into the arguments.
REPLAY_JOB = SparkJob(
    name="metrics_kappa_replay",
    entry="spark_apps/streaming/metrics/replay.py",
    args=["--bootstrap", KAFKA, "--source-topic", "{{ params.source_topic }}", "--version", "{{ params.version }}",
          *(["--kafka-options", KAFKA_OPTIONS] if KAFKA_OPTIONS else [])],
    # The replay groups the whole retained log by minute: a few partitions per core, not the 200 default.
    conf={"spark.sql.shuffle.partitions": "4"},
)
