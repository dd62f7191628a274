"""A Kafka sink for Spark (streaming and batch) over confluent-kafka.

Counterpart of ``source.py`` for machines without the spark-sql-kafka jar. Input columns
follow the native connector: ``value`` (binary or string, required), ``key`` (binary or
string, optional), ``topic`` (string, optional; the ``topic`` option wins when both are
given, as in the native connector) and ``partition`` (int, optional).

Delivery guarantees: each Spark task uses an idempotent producer (enable.idempotence,
acks=all), so broker-side retries do not duplicate records within a task, then flushes
and fails the task if any record was not acknowledged. A failed or retried micro-batch
can still write some records twice (at-least-once), exactly like the native sink: Kafka
offers no way to roll back without transactions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator, List, Mapping, Optional

from pyspark.sql import Row
from pyspark.sql.datasource import DataSourceStreamWriter, DataSourceWriter, WriterCommitMessage
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructType

from spark_apps.streaming.kafka import options as opts

LOG = logging.getLogger(__name__)

# librdkafka's default delivery timeout; flush waits a little longer than this so that
# every outstanding record has either been acknowledged or reported as failed.
_DEFAULT_DELIVERY_TIMEOUT_MS = 300_000
_FLUSH_MARGIN_S = 30.0


class KafkaDeliveryError(RuntimeError):
    """At least one record was not acknowledged by the broker."""


@dataclass
class KafkaWriteCommitMessage(WriterCommitMessage):
    records_written: int
    records_by_topic: dict = field(default_factory=dict)


class _KafkaWriteConfig:
    """What a write task needs; parsed and validated on the driver, pickled to executors."""

    def __init__(self, options: Mapping[str, str], schema: StructType):
        settings = opts.client_settings(options)
        # Weaker settings would let a broker retry duplicate or silently drop records.
        for name, accepted in (("enable.idempotence", {"true"}), ("acks", {"all", "-1"})):
            given = settings.get(name)
            if given is not None and given.lower() not in accepted:
                raise ValueError(f"Option 'kafka.{name}' must be one of {sorted(accepted)}.")
        self.producer_settings = {**settings, "enable.idempotence": "true", "acks": "all"}
        self.default_topic = opts.get_option(options, "topic")
        fields = {f.name: f.dataType for f in schema.fields}
        if "value" not in fields:
            raise ValueError("The Kafka sink needs a 'value' column (binary or string).")
        for name in ("key", "value"):
            if name in fields and not isinstance(fields[name], (BinaryType, StringType)):
                raise ValueError(f"Column {name!r} must be binary or string, not {fields[name]}.")
        if "topic" in fields and not isinstance(fields["topic"], StringType):
            raise ValueError(f"Column 'topic' must be a string, not {fields['topic']}.")
        if "partition" in fields and not isinstance(fields["partition"], IntegerType):
            raise ValueError(f"Column 'partition' must be an int, not {fields['partition']}.")
        if self.default_topic is None and "topic" not in fields:
            raise ValueError("The Kafka sink needs a 'topic' option or a 'topic' column.")
        self.has_key = "key" in fields
        self.has_topic_column = "topic" in fields
        self.has_partition_column = "partition" in fields
        timeout_ms = int(
            settings.get("delivery.timeout.ms")
            or settings.get("message.timeout.ms")
            or _DEFAULT_DELIVERY_TIMEOUT_MS
        )
        self.flush_timeout_s = timeout_ms / 1000 + _FLUSH_MARGIN_S


def _as_bytes(value) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


def write_rows_to_kafka(rows: Iterator[Row], config: _KafkaWriteConfig) -> KafkaWriteCommitMessage:
    """Produce every row, wait for all acknowledgements, raise if any delivery failed."""
    from confluent_kafka import Producer

    producer = Producer(config.producer_settings)
    failures: list[str] = []
    acknowledged_by_topic: dict[str, int] = {}

    def on_delivery(error, message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")
        else:
            topic = message.topic()
            acknowledged_by_topic[topic] = acknowledged_by_topic.get(topic, 0) + 1

    produced = 0
    for row in rows:
        topic = config.default_topic or (row["topic"] if config.has_topic_column else None)
        if topic is None:
            raise ValueError("A row has a null 'topic' and no 'topic' option was given.")
        extra = {}
        if config.has_partition_column and row["partition"] is not None:
            extra["partition"] = row["partition"]
        record = dict(
            topic=topic,
            value=_as_bytes(row["value"]),
            key=_as_bytes(row["key"]) if config.has_key else None,
            on_delivery=on_delivery,
            **extra,
        )
        while True:
            try:
                producer.produce(**record)
                break
            except BufferError:
                # Local queue full: let deliveries complete, then retry this record.
                producer.poll(0.5)
        produced += 1
        if failures:
            break  # stop producing once the broker rejects records; reported below
        producer.poll(0)
    remaining = producer.flush(config.flush_timeout_s)
    if failures or remaining:
        raise KafkaDeliveryError(
            f"Kafka delivery failed for {len(failures)} record(s) and {remaining} were still "
            f"unacknowledged after {config.flush_timeout_s:.0f}s (of {produced} produced); "
            f"first error: {failures[0] if failures else 'flush timed out'}"
        )
    return KafkaWriteCommitMessage(
        records_written=sum(acknowledged_by_topic.values()),
        records_by_topic=acknowledged_by_topic,
    )


def _log_commit(messages: List[Optional[WriterCommitMessage]], what: str) -> None:
    total = sum(m.records_written for m in messages if isinstance(m, KafkaWriteCommitMessage))
    LOG.info("Kafka sink %s: %d record(s) acknowledged by the broker.", what, total)


class KafkaStreamWriter(DataSourceStreamWriter):
    def __init__(self, options: Mapping[str, str], schema: StructType):
        self.config = _KafkaWriteConfig(options, schema)

    def write(self, iterator: Iterator[Row]) -> KafkaWriteCommitMessage:
        return write_rows_to_kafka(iterator, self.config)

    def commit(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        _log_commit(messages, f"micro-batch {batchId}")

    def abort(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        # Records already acknowledged stay in Kafka; the batch is retried or the query
        # fails, so consumers may see them twice (at-least-once, as with the native sink).
        _log_commit(messages, f"aborted micro-batch {batchId} (already written, not revoked)")


class KafkaBatchWriter(DataSourceWriter):
    def __init__(self, options: Mapping[str, str], schema: StructType):
        self.config = _KafkaWriteConfig(options, schema)

    def write(self, iterator: Iterator[Row]) -> KafkaWriteCommitMessage:
        return write_rows_to_kafka(iterator, self.config)

    def commit(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _log_commit(messages, "batch write")

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _log_commit(messages, "aborted batch write (already written, not revoked)")
