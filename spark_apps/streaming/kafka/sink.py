"""A Kafka sink for Spark (streaming and batch) over confluent-kafka.

Counterpart of ``source.py`` for machines without the spark-sql-kafka jar. Input columns
follow the native connector: ``value`` (binary or string, required), ``key`` (binary or
string, optional), ``topic`` (string, optional; the ``topic`` option wins when both are
given, as in the native connector) and ``partition`` (int, optional).

Delivery guarantees: records go through an idempotent producer (enable.idempotence,
acks=all; one per Python worker process, kept between tasks), so broker-side retries do
not duplicate records; each task flushes and fails if any of its records was not
acknowledged. A failed or retried micro-batch
can still write some records twice (at-least-once), exactly like the native sink: Kafka
offers no way to roll back without transactions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator, List, Mapping, Optional

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.datasource import DataSourceArrowWriter, DataSourceStreamArrowWriter, WriterCommitMessage
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


# One producer per Python worker process and configuration, kept between tasks. Creating
# an idempotent producer costs a round of InitProducerId with the broker before the first
# record can go out (~0.5 s measured against the embedded broker), which every task of
# every micro-batch paid; Spark reuses its Python workers (spark.python.worker.reuse), so
# the next task finds the producer connected. Tasks never overlap within one worker
# process, and each task flushes before it returns, so no record or delivery report of
# one task is left for the next. A producer whose task failed is closed and dropped.
_PRODUCERS: dict = {}


class _SharedProducer:
    """A producer and the delivery failures reported since the current task began.

    Delivery reports come only for failed records (``delivery.report.only.error``) and go to
    one producer-level callback: a Python callback per record (passing ``on_delivery`` to
    every ``produce``) cost a third of the sink's time (measured: 230 k records/s with one,
    340 k without, against the embedded broker). A task that flushes with nothing
    outstanding and no failure reported had every record acknowledged.
    """

    def __init__(self, settings: Mapping[str, str]):
        from confluent_kafka import Producer

        self.failures: list[str] = []
        self.producer = Producer({**settings, "delivery.report.only.error": True,
                                  "on_delivery": self._on_delivery})

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self.failures.append(f"{message.topic()}: {error}")


def _settings_key(settings: Mapping[str, str]) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in settings.items()))


def _shared_producer(settings: Mapping[str, str]) -> _SharedProducer:
    key = _settings_key(settings)
    shared = _PRODUCERS.get(key)
    if shared is None:
        shared = _PRODUCERS[key] = _SharedProducer(settings)
    shared.failures.clear()
    return shared


def _discard_producer(settings: Mapping[str, str], shared: _SharedProducer) -> None:
    """Forget a producer after a failed task; what it still holds is not sent."""
    if _PRODUCERS.get(_settings_key(settings)) is shared:
        del _PRODUCERS[_settings_key(settings)]
    try:
        shared.producer.purge()
        shared.producer.flush(0)
    except Exception:  # the task fails anyway; never hide its error behind this one
        LOG.warning("Could not purge a failed Kafka producer.", exc_info=True)


# How often (in records) the producer serves delivery reports while producing; each
# poll() is a call into librdkafka, so not after every record.
_POLL_EVERY = 1000


def _count_by_topic(topics: pa.Array, counts: dict) -> None:
    for entry in pc.value_counts(topics).to_pylist():
        counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]


def _produce_batches(shared: _SharedProducer, batches: Iterator[pa.RecordBatch],
                     config: _KafkaWriteConfig, produced_by_topic: dict) -> int:
    """Hand every row to the producer (stops early once a delivery failed); returns the count."""
    producer, failures = shared.producer, shared.failures
    produce, poll = producer.produce, producer.poll
    produced = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        count = batch.num_rows
        values = batch.column("value").to_pylist()
        keys = batch.column("key").to_pylist() if config.has_key else [None] * count
        if config.default_topic is not None:
            topics = [config.default_topic] * count
            produced_by_topic[config.default_topic] = produced_by_topic.get(config.default_topic, 0) + count
        else:
            topic_column = batch.column("topic")
            if topic_column.null_count:
                raise ValueError("A row has a null 'topic' and no 'topic' option was given.")
            topics = topic_column.to_pylist()
            _count_by_topic(topic_column, produced_by_topic)
        partitions = batch.column("partition").to_pylist() if config.has_partition_column else None
        for index in range(count):
            topic, value, key = topics[index], values[index], keys[index]
            if value is not None and type(value) is not bytes:
                value = _as_bytes(value)
            if key is not None and type(key) is not bytes:
                key = _as_bytes(key)
            partition = partitions[index] if partitions is not None else None
            while True:
                try:
                    if partition is None:
                        produce(topic, value, key)
                    else:
                        produce(topic, value, key, partition=partition)
                    break
                except BufferError:
                    # Local queue full: let deliveries complete, then retry this record.
                    poll(0.5)
            produced += 1
            if produced % _POLL_EVERY == 0:
                poll(0)
                if failures:
                    break  # stop producing once the broker rejects records; reported below
        if failures:
            break
    return produced


def write_batches_to_kafka(
    batches: Iterator[pa.RecordBatch], config: _KafkaWriteConfig
) -> KafkaWriteCommitMessage:
    """Produce every row of the Arrow batches, wait for all acknowledgements, raise if
    any delivery failed. Columns are taken whole from each batch (``to_pylist``), so the
    per-record work is one ``produce`` call."""
    shared = _shared_producer(config.producer_settings)
    produced_by_topic: dict[str, int] = {}
    try:
        produced = _produce_batches(shared, batches, config, produced_by_topic)
    except BaseException:
        _discard_producer(config.producer_settings, shared)
        raise
    remaining = shared.producer.flush(config.flush_timeout_s)
    failures = shared.failures
    if failures or remaining:
        _discard_producer(config.producer_settings, shared)
        raise KafkaDeliveryError(
            f"Kafka delivery failed for {len(failures)} record(s) and {remaining} were still "
            f"unacknowledged after {config.flush_timeout_s:.0f}s (of {produced} produced); "
            f"first error: {failures[0] if failures else 'flush timed out'}"
        )
    # Nothing outstanding and no failure reported: every produced record was acknowledged.
    return KafkaWriteCommitMessage(
        records_written=sum(produced_by_topic.values()),
        records_by_topic=produced_by_topic,
    )


def _log_commit(messages: List[Optional[WriterCommitMessage]], what: str) -> None:
    total = sum(m.records_written for m in messages if isinstance(m, KafkaWriteCommitMessage))
    LOG.info("Kafka sink %s: %d record(s) acknowledged by the broker.", what, total)


class KafkaStreamWriter(DataSourceStreamArrowWriter):
    """Gets each task's rows as Arrow record batches (no per-row Row objects)."""

    def __init__(self, options: Mapping[str, str], schema: StructType):
        self.config = _KafkaWriteConfig(options, schema)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> KafkaWriteCommitMessage:
        return write_batches_to_kafka(iterator, self.config)

    def commit(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        _log_commit(messages, f"micro-batch {batchId}")

    def abort(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        # Records already acknowledged stay in Kafka; the batch is retried or the query
        # fails, so consumers may see them twice (at-least-once, as with the native sink).
        _log_commit(messages, f"aborted micro-batch {batchId} (already written, not revoked)")


class KafkaBatchWriter(DataSourceArrowWriter):
    def __init__(self, options: Mapping[str, str], schema: StructType):
        self.config = _KafkaWriteConfig(options, schema)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> KafkaWriteCommitMessage:
        return write_batches_to_kafka(iterator, self.config)

    def commit(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _log_commit(messages, "batch write")

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _log_commit(messages, "aborted batch write (already written, not revoked)")


class KafkaArrowBatchWriter:
    """Writes (key, value) Arrow batches to ``options["topic"]`` from inside a task, with
    the sink's shared idempotent producer; raises :class:`KafkaDeliveryError` unless every
    record was acknowledged. Picklable (built on the driver, called on executors), for a
    task that must publish a side output (e.g. dead letters of a decoder) before it ends."""

    def __init__(self, options: Mapping[str, str]):
        schema = StructType().add("key", BinaryType()).add("value", BinaryType())
        self.config = _KafkaWriteConfig(options, schema)

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> KafkaWriteCommitMessage:
        return write_batches_to_kafka(batches, self.config)
