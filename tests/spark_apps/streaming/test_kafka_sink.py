"""The Python Kafka sink and the native/python format choice."""
from __future__ import annotations

import socket

import pytest
from pyspark.errors import StreamingQueryException

from spark_apps.streaming import kafka as kafka_streaming
from spark_apps.streaming.kafka import read_stream, write_stream

QUERY_TIMEOUT_S = 120


def _closed_port() -> int:
    """A local port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.spark
@pytest.mark.stack
@pytest.mark.timeout(300)
def test_stream_copies_a_topic_exactly(kafka_spark, kafka_broker, tmp_path):
    source_topic = kafka_broker.create_topic(partitions=2)
    target_topic = kafka_broker.create_topic(partitions=2)
    records = [(f"k{i}".encode(), f"v{i}".encode(), i % 2) for i in range(150)]
    kafka_broker.produce(source_topic, records)

    source = read_stream(kafka_spark, kafka_broker.bootstrap, source_topic, startingOffsets="earliest")
    query = (
        write_stream(
            source.selectExpr("key", "value", "partition"),
            kafka_broker.bootstrap, target_topic, str(tmp_path / "checkpoint"),
        )
        .trigger(availableNow=True)
        .start()
    )
    try:
        assert query.awaitTermination(QUERY_TIMEOUT_S), "query did not finish in time"
    finally:
        if query.isActive:
            query.stop()

    copied = kafka_broker.consume_all(target_topic, partitions=2)
    assert sorted((m.partition(), m.key(), m.value()) for m in copied) == sorted(
        (p, k, v) for k, v, p in records
    )
    # Within a partition the copy keeps the source order (one task per source partition).
    for partition in (0, 1):
        copied_values = [m.value() for m in sorted(copied, key=lambda m: m.offset()) if m.partition() == partition]
        assert copied_values == [v for _, v, p in records if p == partition]


@pytest.mark.spark
@pytest.mark.stack
@pytest.mark.timeout(300)
def test_batch_write_routes_rows_by_topic_column(kafka_spark, kafka_broker):
    first = kafka_broker.create_topic(partitions=1)
    second = kafka_broker.create_topic(partitions=1)
    rows = [(first, "a", "1"), (second, "b", "2"), (first, None, "3")]

    df = kafka_spark.createDataFrame(rows, "topic string, key string, value string")
    df.write.format(kafka_streaming.PYTHON_FORMAT).option(
        "kafka.bootstrap.servers", kafka_broker.bootstrap
    ).mode("append").save()

    assert {(m.key(), m.value()) for m in kafka_broker.consume_all(first, 1)} == {
        (b"a", b"1"), (None, b"3")
    }
    assert [(m.key(), m.value()) for m in kafka_broker.consume_all(second, 1)] == [(b"b", b"2")]


@pytest.mark.spark
@pytest.mark.timeout(300)
def test_undeliverable_stream_fails_the_query_with_the_delivery_error(kafka_spark, kafka_broker, tmp_path):
    source_topic = kafka_broker.create_topic(partitions=1)
    kafka_broker.produce(source_topic, [(b"k", b"v", 0)])
    unreachable = f"127.0.0.1:{_closed_port()}"

    source = read_stream(kafka_spark, kafka_broker.bootstrap, source_topic, startingOffsets="earliest")
    query = (
        write_stream(
            source.select("key", "value"), unreachable, "nowhere", str(tmp_path / "checkpoint"),
            **{"kafka.message.timeout.ms": 3000, "kafka.socket.connection.setup.timeout.ms": 1000},
        )
        .trigger(availableNow=True)
        .start()
    )
    try:
        with pytest.raises(StreamingQueryException, match="Kafka delivery failed for 1 record"):
            query.awaitTermination(QUERY_TIMEOUT_S)
    finally:
        if query.isActive:
            query.stop()


def test_sink_refuses_settings_that_weaken_delivery(kafka_spark):
    from spark_apps.streaming.kafka.sink import KafkaStreamWriter
    from pyspark.sql.types import BinaryType, StructField, StructType

    schema = StructType([StructField("value", BinaryType())])
    with pytest.raises(ValueError, match="kafka.acks"):
        KafkaStreamWriter({"kafka.bootstrap.servers": "x:1", "topic": "t", "kafka.acks": "1"}, schema)
    with pytest.raises(ValueError, match="'topic' option or a 'topic' column"):
        KafkaStreamWriter({"kafka.bootstrap.servers": "x:1"}, schema)


@pytest.mark.spark
def test_format_choice_follows_env_var_then_classpath(kafka_spark, monkeypatch):
    monkeypatch.setenv(kafka_streaming.FORMAT_ENV_VAR, "native")
    assert kafka_streaming.kafka_format(kafka_spark) == "kafka"
    monkeypatch.setenv(kafka_streaming.FORMAT_ENV_VAR, "python")
    assert kafka_streaming.kafka_format(kafka_spark) == "dp_kafka"
    monkeypatch.setenv(kafka_streaming.FORMAT_ENV_VAR, "kafka010")
    with pytest.raises(ValueError, match="DP_KAFKA_SPARK_FORMAT"):
        kafka_streaming.kafka_format(kafka_spark)
    monkeypatch.delenv(kafka_streaming.FORMAT_ENV_VAR)
    # This machine has no spark-sql-kafka jar, so the default is the Python source.
    assert not kafka_streaming.native_connector_available(kafka_spark)
    assert kafka_streaming.kafka_format(kafka_spark) == "dp_kafka"


@pytest.mark.spark
def test_native_connector_probe_finds_a_loadable_class(kafka_spark, monkeypatch):
    # Guards the probe itself: the same lookup must say yes for a class that is present.
    monkeypatch.setattr(
        kafka_streaming, "NATIVE_PROVIDER_CLASS", "org.apache.spark.sql.SparkSession"
    )
    assert kafka_streaming.native_connector_available(kafka_spark)


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_write_batches_to_kafka_produces_every_row_of_every_arrow_batch(kafka_broker):
    import pyarrow as pa

    from spark_apps.streaming.kafka.sink import _KafkaWriteConfig, write_batches_to_kafka
    from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

    first, second = kafka_broker.create_topic(partitions=2), kafka_broker.create_topic(partitions=1)
    schema = StructType([StructField("key", StringType()), StructField("value", BinaryType()),
                         StructField("topic", StringType()), StructField("partition", IntegerType())])
    config = _KafkaWriteConfig({"kafka.bootstrap.servers": kafka_broker.bootstrap}, schema)
    batches = [
        pa.RecordBatch.from_pydict({"key": ["a", None], "value": [b"1", b"2"], "topic": [first, first],
                                    "partition": pa.array([1, None], pa.int32())}),
        pa.RecordBatch.from_pydict({"key": ["c"], "value": [None], "topic": [second],
                                    "partition": pa.array([None], pa.int32())}),
        pa.RecordBatch.from_pydict({"key": pa.array([], pa.string()), "value": pa.array([], pa.binary()),
                                    "topic": pa.array([], pa.string()), "partition": pa.array([], pa.int32())}),
    ]
    message = write_batches_to_kafka(iter(batches), config)

    assert (message.records_written, message.records_by_topic) == (3, {first: 2, second: 1})
    in_first = kafka_broker.consume_all(first, partitions=2)
    assert sorted(((m.key(), m.value()) for m in in_first), key=lambda kv: kv[1]) == [(b"a", b"1"), (None, b"2")]
    assert [m.partition() for m in in_first if m.key() == b"a"] == [1]
    assert [(m.key(), m.value()) for m in kafka_broker.consume_all(second, partitions=1)] == [(b"c", None)]


def test_producers_are_kept_per_configuration_and_dropped_after_a_failure():
    from spark_apps.streaming.kafka import sink

    settings = {"bootstrap.servers": "127.0.0.1:1", "enable.idempotence": "true", "acks": "all"}
    first = sink._shared_producer(settings)
    assert sink._shared_producer(dict(reversed(list(settings.items())))) is first
    other = sink._shared_producer({**settings, "linger.ms": "1"})
    assert other is not first
    sink._discard_producer(settings, first)
    assert sink._shared_producer(settings) is not first
    for extra in ({}, {"linger.ms": "1"}):
        sink._discard_producer({**settings, **extra}, sink._shared_producer({**settings, **extra}))
