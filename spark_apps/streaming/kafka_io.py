"""Kafka in and out of Spark, through Spark's own connector (``format("kafka")``, the
spark-sql-kafka-0-10 jar every environment puts on the classpath: ``jvm/pom.xml``).

The streaming jobs call these instead of spelling the options out, so the client settings
are given in one place: ``kafka.bootstrap.servers`` and, for a broker that needs more
(TLS/SASL/IAM on MSK), the extra Kafka client settings of ``DP_KAFKA_OPTIONS`` or the
jobs' ``--kafka-options``: a JSON object of Java client settings, with or without the
``kafka.`` prefix, e.g. ``{"security.protocol": "SASL_SSL", "sasl.mechanism": "AWS_MSK_IAM",
...}``. They reach every consumer and producer Spark makes (source, stream sink, batch sink).
Put no secret there when the jobs run as EMR steps (step arguments are visible): MSK IAM
needs none.

Offsets live in the query's checkpoint only (Spark never commits them to a consumer group),
and ``failOnDataLoss`` stays at Spark's default, true: a query whose next offsets were
deleted (retention, ``kafka-delete-records``, a recreated topic) fails instead of skipping.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter

FORMAT = "kafka"
OPTIONS_ENV_VAR = "DP_KAFKA_OPTIONS"


def client_options(bootstrap: str, extra: str | dict | None = None) -> dict[str, str]:
    """``kafka.*`` options for Spark's connector: the bootstrap servers plus ``extra`` (a JSON
    object or dict of client settings; default: ``$DP_KAFKA_OPTIONS``)."""
    if extra is None:
        extra = os.environ.get(OPTIONS_ENV_VAR) or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"Kafka client options must be a JSON object: {error}") from None
    if not isinstance(extra, dict):
        raise ValueError(f"Kafka client options must be a JSON object, got {type(extra).__name__}")
    options = {"kafka.bootstrap.servers": bootstrap}
    for key, value in extra.items():
        name = key if key.startswith("kafka.") else f"kafka.{key}"
        options[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return options


def _strings(options: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items() if v is not None}


def read_kafka_stream(spark: SparkSession, bootstrap: str, topics: str | Iterable[str],
                      kafka_options: str | dict | None = None, **options) -> DataFrame:
    """A streaming frame over ``topics`` (key, value, topic, partition, offset, timestamp,
    timestampType); ``options`` are the source's (startingOffsets, maxOffsetsPerTrigger,
    failOnDataLoss, ...)."""
    subscribe = topics if isinstance(topics, str) else ",".join(topics)
    return (spark.readStream.format(FORMAT).options(**client_options(bootstrap, kafka_options))
            .option("subscribe", subscribe).options(**_strings(options)).load())


def write_kafka_stream(df: DataFrame, bootstrap: str, checkpoint: str, topic: str | None = None,
                       kafka_options: str | dict | None = None) -> DataStreamWriter:
    """A stream writer to Kafka (not started: set a trigger, then ``start()``). ``df`` has
    ``value`` and optionally ``key``; ``topic=None`` routes each row by its ``topic`` column."""
    writer = (df.writeStream.format(FORMAT).options(**client_options(bootstrap, kafka_options))
              .option("checkpointLocation", checkpoint))
    return writer.option("topic", topic) if topic is not None else writer


def write_kafka_batch(df: DataFrame, bootstrap: str, topic: str, kafka_options: str | dict | None = None) -> None:
    """Publish the rows of a static frame (``key``, ``value``) to ``topic`` and return once
    the producer has flushed them (a failed record fails the Spark job): what a foreachBatch
    uses to send part of a micro-batch through the same connector."""
    (df.write.format(FORMAT).options(**client_options(bootstrap, kafka_options))
     .option("topic", topic).save())
