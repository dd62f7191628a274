"""Kafka for Spark Structured Streaming, written once for both connectors.

Pipelines call :func:`read_stream` / :func:`write_stream` instead of
``format("kafka")``. Where Spark's native connector (the spark-sql-kafka Maven jar) is
on the classpath — EMR, the docker-compose stack — they get it unchanged; elsewhere
(machines without Maven Central, the embedded Tansu broker in tests) they get the Python
Data Source in :mod:`spark_apps.streaming.kafka.source`, which takes the same options
and produces the same columns.

The choice: ``DP_KAFKA_SPARK_FORMAT=native|python``; unset means native when
``org.apache.spark.sql.kafka010.KafkaSourceProvider`` can be loaded by the session's JVM,
python otherwise.
"""
from __future__ import annotations

import os
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter

from spark_apps.streaming.kafka.source import FORMAT_NAME as PYTHON_FORMAT
from spark_apps.streaming.kafka.source import KafkaDataSource

NATIVE_FORMAT = "kafka"
FORMAT_ENV_VAR = "DP_KAFKA_SPARK_FORMAT"
NATIVE_PROVIDER_CLASS = "org.apache.spark.sql.kafka010.KafkaSourceProvider"

__all__ = [
    "NATIVE_FORMAT",
    "PYTHON_FORMAT",
    "kafka_format",
    "native_connector_available",
    "read_stream",
    "register",
    "write_stream",
]


def register(spark: SparkSession) -> None:
    """Make ``format("dp_kafka")`` available in this session (idempotent)."""
    spark.dataSource.register(KafkaDataSource)


def native_connector_available(spark: SparkSession) -> bool:
    """Whether the spark-sql-kafka jar is on the session's classpath."""
    try:
        jvm = spark._jvm  # absent on Spark Connect sessions
    except Exception:
        return False
    if jvm is None:
        return False
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(NATIVE_PROVIDER_CLASS, False, loader)
        return True
    except Exception:
        return False


def kafka_format(spark: SparkSession) -> str:
    """The format name to use, registering the Python source when that is the choice."""
    choice = os.environ.get(FORMAT_ENV_VAR, "").strip().lower()
    if choice not in ("", "native", "python"):
        raise ValueError(f"{FORMAT_ENV_VAR} must be 'native' or 'python', got {choice!r}.")
    if choice == "native" or (choice == "" and native_connector_available(spark)):
        return NATIVE_FORMAT
    register(spark)
    return PYTHON_FORMAT


def _as_option_values(options: dict) -> dict[str, str]:
    # Both connectors take string options; booleans must read "true"/"false".
    return {
        key: (str(value).lower() if isinstance(value, bool) else str(value))
        for key, value in options.items()
    }


def read_stream(
    spark: SparkSession, bootstrap: str, topics: str | Iterable[str], **options
) -> DataFrame:
    """A streaming DataFrame over ``topics`` with the native connector's columns.

    ``options`` are the native connector's (startingOffsets, maxOffsetsPerTrigger,
    failOnDataLoss, kafka.* client settings) and mean the same with either format.
    """
    topic_list = topics if isinstance(topics, str) else ",".join(topics)
    return (
        spark.readStream.format(kafka_format(spark))
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic_list)
        .options(**_as_option_values(options))
        .load()
    )


def write_stream(
    df: DataFrame, bootstrap: str, topic: str | None, checkpoint: str, **options
) -> DataStreamWriter:
    """A configured (not started) stream writer to Kafka; set a trigger and call start().

    ``df`` needs a ``value`` column and may have ``key``, ``partition`` and ``topic``
    columns; pass ``topic=None`` to route each row by its ``topic`` column.
    """
    writer = (
        df.writeStream.format(kafka_format(df.sparkSession))
        .option("kafka.bootstrap.servers", bootstrap)
        .option("checkpointLocation", checkpoint)
        .options(**_as_option_values(options))
    )
    if topic is not None:
        writer = writer.option("topic", topic)
    return writer
