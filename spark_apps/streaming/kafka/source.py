"""A Kafka source for Spark Structured Streaming written with the Python Data Source API.

Why this exists: Spark's own Kafka connector (``spark-sql-kafka-0-10``) is a Maven jar.
Where it is on the classpath (EMR, the docker-compose stack) pipelines use it unchanged
(see ``spark_apps.streaming.kafka.read_stream``). On machines without Maven Central the
jar cannot be fetched, so this module provides the same options and the same row schema
over confluent-kafka (librdkafka), registered as the ``dp_kafka`` format.

How offsets are handled, and why:

* Offsets live only in the query checkpoint: the offset dict returned by
  ``initialOffset``/``latestOffset`` (``{"topic": {"0": 42}}``, same JSON as the native
  connector). Kafka consumer groups are never joined and nothing is committed to Kafka,
  because group rebalances are unreliable on the embedded broker and because the
  checkpoint must be the single source of truth for exactly-once replays.
* Each micro-batch reads exactly ``[start, end)`` per topic-partition, one Spark task per
  topic-partition, with ``assign()`` at an explicit offset. A restarted query therefore
  neither skips nor re-reads committed data.
* End offsets come from the high watermark of a Fetch response, not from ListOffsets:
  the embedded broker (Tansu 0.6) answers ListOffsets(latest) with "base offset of the
  last record batch + 1", which is too small whenever the last batch holds more than
  one record. A fetch at that offset returns the correct high watermark, and on a
  correct broker it is the same number, so the probe is right on both.
* Offsets by timestamp are not used (the broker does not implement them).
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    ReadMinRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from spark_apps.streaming.kafka import options as opts

LOG = logging.getLogger(__name__)

FORMAT_NAME = "dp_kafka"

# Same columns and types as the native connector's source (minus headers).
KAFKA_SOURCE_SCHEMA = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), True),
        StructField("partition", IntegerType(), True),
        StructField("offset", LongType(), True),
        StructField("timestamp", TimestampType(), True),
        StructField("timestampType", IntegerType(), True),
    ]
)

TopicPartitionKey = tuple[str, int]

_ARROW_SOURCE_SCHEMA = to_arrow_schema(KAFKA_SOURCE_SCHEMA, timezone="UTC")
_ARROW_TIMESTAMP = _ARROW_SOURCE_SCHEMA.field("timestamp").type

# librdkafka reports (type, ms); the native connector exposes Kafka's TimestampType ids.
_TIMESTAMP_TYPE_IDS = {0: -1, 1: 0, 2: 1}  # not available, CreateTime, LogAppendTime
_ROWS_PER_ARROW_BATCH = 10_000  # Spark's default spark.sql.execution.arrow.maxRecordsPerBatch
_MESSAGES_PER_CONSUME = 5000
_DEFAULT_POLL_TIMEOUT_MS = 120_000  # as the native kafkaConsumer.pollTimeoutMs
_METADATA_TIMEOUT_S = 30.0


class KafkaDataLossError(RuntimeError):
    """Offsets recorded in the checkpoint are no longer available on the broker."""


class KafkaOffsetRange(InputPartition):
    """One Spark task: records ``[start_offset, end_offset)`` of one topic-partition."""

    def __init__(self, topic: str, partition: int, start_offset: int, end_offset: int):
        super().__init__(f"{topic}-{partition}[{start_offset},{end_offset})")
        self.topic = topic
        self.partition = partition
        self.start_offset = start_offset
        self.end_offset = end_offset


def offsets_to_json_dict(positions: Mapping[TopicPartitionKey, int]) -> dict:
    """Checkpoint form ``{"topic": {"0": n}}``, always in the same key order.

    Spark decides "no new data" by comparing offsets as JSON text, so two dicts with the
    same positions must serialise identically: topics and partitions are sorted.
    """
    result: dict[str, dict[str, int]] = {}
    for topic, partition in sorted(positions):
        result.setdefault(topic, {})[str(partition)] = int(positions[(topic, partition)])
    return result


def offsets_from_json_dict(offsets: Mapping) -> dict[TopicPartitionKey, int]:
    return {
        (topic, int(partition)): int(offset)
        for topic, partitions in (offsets or {}).items()
        for partition, offset in partitions.items()
    }


def split_read_limit(
    start: Mapping[TopicPartitionKey, int],
    available_end: Mapping[TopicPartitionKey, int],
    max_rows: int,
) -> dict[TopicPartitionKey, int]:
    """Spread ``max_rows`` over the partitions in proportion to what each has waiting.

    Returns end offsets whose total distance from ``start`` is exactly
    ``min(max_rows, total waiting)``: floor shares first, then the leftover rows go to the
    partitions with the largest remainders (ties broken by topic-partition order, so the
    result is deterministic and replays plan the same batch).
    """
    backlog = {tp: max(0, available_end[tp] - start[tp]) for tp in available_end}
    total = sum(backlog.values())
    if total <= max_rows:
        return dict(available_end)
    shares = {tp: (backlog[tp] * max_rows) // total for tp in backlog}
    leftover = max_rows - sum(shares.values())
    by_remainder = sorted(
        backlog, key=lambda tp: (-((backlog[tp] * max_rows) % total), tp)
    )
    for tp in by_remainder[:leftover]:
        shares[tp] += 1
    return {tp: start[tp] + shares[tp] for tp in available_end}


class BrokerOffsets:
    """Driver-side view of the broker: which partitions exist and their offset bounds.

    Holds one long-lived consumer that never joins its group (assign() only, nothing
    committed); the random group.id exists only because librdkafka requires one.
    """

    def __init__(self, client_settings: Mapping[str, str]):
        from confluent_kafka import Consumer

        self._consumer = Consumer(
            {
                **client_settings,
                "group.id": f"dp-kafka-source-offsets-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                # The end probe fetches at the end of each partition, where a broker holds
                # the fetch up to this long waiting for data: answer fast (it runs once per
                # trigger and query, so it adds to every micro-batch's latency).
                "fetch.wait.max.ms": 10,
                "auto.offset.reset": "error",
            }
        )

    def close(self) -> None:
        self._consumer.close()

    def partitions_of(self, topics: list[str]) -> list[TopicPartitionKey]:
        """Existing partitions of the subscribed topics; missing topics have none (yet).

        Metadata is asked for all topics, never for the subscribed ones by name, so that
        asking does not auto-create them on brokers that create topics on metadata.
        """
        metadata = self._consumer.list_topics(timeout=_METADATA_TIMEOUT_S)
        found = []
        for topic in topics:
            topic_metadata = metadata.topics.get(topic)
            if topic_metadata is None or topic_metadata.error is not None:
                continue
            found.extend((topic, p) for p in topic_metadata.partitions)
        return sorted(found)

    def bounds(
        self, partitions: list[TopicPartitionKey], timeout_s: float = _METADATA_TIMEOUT_S
    ) -> dict[TopicPartitionKey, tuple[int, int]]:
        """``(earliest, end)`` per partition; end is one past the last readable record."""
        from confluent_kafka import KafkaError, TopicPartition

        listed = {}
        for topic, partition in partitions:
            listed[(topic, partition)] = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s, cached=False
            )
        if not partitions:
            return {}
        # Fetch from the listed end: the Fetch response carries the true high watermark
        # (see the module docstring for why ListOffsets alone is not trusted).
        self._consumer.assign(
            [TopicPartition(t, p, max(listed[(t, p)][1], 0)) for t, p in partitions]
        )
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        try:
            while pending and time.monotonic() < deadline:
                message = self._consumer.poll(0.2)
                if message is None:
                    continue
                key = (message.topic(), message.partition())
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(
                        f"Kafka error while probing the end offset of {key[0]}-{key[1]}: {error}"
                    )
                pending.discard(key)
            if pending:
                raise TimeoutError(
                    f"Kafka broker did not answer a fetch for {sorted(pending)} within "
                    f"{timeout_s:.0f}s while looking up end offsets."
                )
            result = {}
            for key in partitions:
                earliest, listed_end = listed[key]
                _, fetched_end = self._consumer.get_watermark_offsets(
                    TopicPartition(*key), cached=True
                )
                result[key] = (earliest, max(listed_end, fetched_end))
            return result
        finally:
            self._consumer.unassign()


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batch reader: plans ``[start, end)`` per topic-partition, reads on executors.

    Spark runs the planning methods (initialOffset, latestOffset, partitions) in one
    long-lived Python process on the driver, and ``read`` on executors from a separate
    instance, so nothing but the parsed options is shared between them.
    """

    def __init__(self, options: Mapping[str, str]):
        self.client_settings = opts.client_settings(options)
        self.topics = opts.parse_topics(opts.get_option(options, "subscribe"))
        self.starting_offsets = opts.parse_starting_offsets(
            opts.get_option(options, "startingOffsets")
        )
        self.max_offsets_per_trigger = opts.parse_positive_int(
            opts.get_option(options, "maxOffsetsPerTrigger"), "maxOffsetsPerTrigger"
        )
        self.fail_on_data_loss = opts.parse_bool(
            opts.get_option(options, "failOnDataLoss"), "failOnDataLoss", True
        )
        self.poll_timeout_ms = opts.parse_positive_int(
            opts.get_option(options, "kafkaConsumer.pollTimeoutMs"), "kafkaConsumer.pollTimeoutMs"
        ) or _DEFAULT_POLL_TIMEOUT_MS
        self._broker: BrokerOffsets | None = None
        self._available_now_end: dict[TopicPartitionKey, int] | None = None
        self._last_seen_end: dict[TopicPartitionKey, int] | None = None

    def __getstate__(self):
        # The reader is pickled to executors; the driver's consumer must stay behind.
        state = dict(self.__dict__)
        state["_broker"] = None
        return state

    # ---- driver side -------------------------------------------------------------

    @property
    def broker(self) -> BrokerOffsets:
        if self._broker is None:
            self._broker = BrokerOffsets(self.client_settings)
        return self._broker

    def _current_bounds(self) -> dict[TopicPartitionKey, tuple[int, int]]:
        bounds = self.broker.bounds(self.broker.partitions_of(self.topics))
        self._last_seen_end = {tp: end for tp, (_, end) in bounds.items()}
        return bounds

    def _data_loss(self, message: str) -> None:
        if self.fail_on_data_loss:
            raise KafkaDataLossError(
                f"{message} Data may have been lost (broker restarted with empty storage, "
                "topic deleted/recreated, or retention). Set failOnDataLoss=false to "
                "continue from the earliest available offsets instead."
            )
        LOG.warning("%s Continuing because failOnDataLoss=false.", message)

    def initialOffset(self) -> dict:
        bounds = self._current_bounds()
        if self.starting_offsets == "earliest":
            return offsets_to_json_dict({tp: lo for tp, (lo, _) in bounds.items()})
        if self.starting_offsets == "latest":
            return offsets_to_json_dict({tp: end for tp, (_, end) in bounds.items()})
        requested = self.starting_offsets
        unknown_topics = sorted(set(requested) - set(self.topics))
        if unknown_topics:
            raise ValueError(
                f"startingOffsets names topics {unknown_topics} that are not in "
                f"subscribe={self.topics}."
            )
        missing = sorted(
            tp for tp in bounds if tp[0] in requested and tp[1] not in requested[tp[0]]
        )
        if missing:
            raise ValueError(
                f"startingOffsets must give an offset for every partition of the topics it "
                f"names; missing: {missing}."
            )
        positions = {}
        for tp, (earliest, end) in bounds.items():
            if tp[0] not in requested:
                # Topics not named in the JSON start at latest, as they would have had
                # they been subscribed with startingOffsets=latest.
                positions[tp] = end
                continue
            wanted = requested[tp[0]][tp[1]]
            positions[tp] = earliest if wanted == opts.EARLIEST else end if wanted == opts.LATEST else wanted
        for topic, partitions in requested.items():
            for partition in partitions:
                if (topic, partition) not in bounds:
                    raise ValueError(
                        f"startingOffsets names {topic}-{partition}, which does not exist."
                    )
        return offsets_to_json_dict(positions)

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.max_offsets_per_trigger is None:
            return ReadAllAvailable()
        return ReadMaxRows(self.max_offsets_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:
        # Trigger.AvailableNow: read up to what exists now, then stop.
        self._available_now_end = {tp: end for tp, (_, end) in self._current_bounds().items()}

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        start_positions = offsets_from_json_dict(start)
        bounds = self._current_bounds()
        # Where reading continues from, per partition, after checking the checkpoint's
        # positions against what the broker still has.
        resume_from: dict[TopicPartitionKey, int] = {}
        for tp, position in start_positions.items():
            if tp not in bounds:
                self._data_loss(
                    f"Kafka partition {tp[0]}-{tp[1]} (checkpoint offset {position}) no "
                    "longer exists."
                )
                continue  # dropped from the offsets: nothing left to read there
            earliest, end = bounds[tp]
            if position > end:
                self._data_loss(
                    f"Kafka partition {tp[0]}-{tp[1]}: checkpoint offset {position} is "
                    f"beyond the broker's end offset {end}."
                )
                resume_from[tp] = earliest
            elif position < earliest:
                self._data_loss(
                    f"Kafka partition {tp[0]}-{tp[1]}: checkpoint offset {position} is "
                    f"before the earliest available offset {earliest}."
                )
                resume_from[tp] = earliest
            else:
                resume_from[tp] = position
        for tp, (earliest, _) in bounds.items():
            if tp not in resume_from and tp not in start_positions:
                LOG.info("New Kafka partition %s-%s: reading from offset %s.", *tp, earliest)
                resume_from[tp] = earliest

        available_end = {tp: bounds[tp][1] for tp in resume_from}
        if self._available_now_end is not None:
            # Never read past what existed when the availableNow run started; partitions
            # created since then wait for the next run.
            available_end = {
                tp: min(end, self._available_now_end[tp])
                for tp, end in available_end.items()
                if tp in self._available_now_end
            }
            available_end = {tp: max(end, resume_from[tp]) for tp, end in available_end.items()}

        if isinstance(limit, ReadMaxRows):
            planned_end = split_read_limit(resume_from, available_end, limit.max_rows)
        elif isinstance(limit, ReadMinRows):
            waiting = sum(available_end[tp] - resume_from[tp] for tp in available_end)
            planned_end = available_end if waiting >= limit.min_rows else dict(resume_from)
        elif isinstance(limit, ReadAllAvailable):
            planned_end = available_end
        else:
            raise ValueError(f"Unsupported read limit for the Kafka source: {limit!r}")

        # Partitions known to the checkpoint but excluded above keep their position.
        end_positions = {
            tp: planned_end.get(tp, start_positions.get(tp, resume_from.get(tp)))
            for tp in resume_from
        }
        return offsets_to_json_dict(end_positions)

    def reportLatestOffset(self) -> dict | None:
        if self._last_seen_end is None:
            return None
        return offsets_to_json_dict(self._last_seen_end)

    def partitions(self, start: dict, end: dict) -> list[KafkaOffsetRange]:
        start_positions = offsets_from_json_dict(start)
        end_positions = offsets_from_json_dict(end)
        needs_earliest = [
            tp
            for tp, until in end_positions.items()
            if tp not in start_positions or until < start_positions[tp]
        ]
        earliest = {}
        if needs_earliest:
            earliest = {tp: lo for tp, (lo, _) in self.broker.bounds(needs_earliest).items()}
        ranges = []
        for tp, until in end_positions.items():
            if tp not in start_positions:
                begin = earliest[tp]  # partition discovered in this batch
            elif until < start_positions[tp]:
                # latestOffset moved this partition back: its data was lost and
                # failOnDataLoss=false, so read what the broker has now from the start.
                self._data_loss(
                    f"Kafka partition {tp[0]}-{tp[1]}: planned range "
                    f"[{start_positions[tp]}, {until}) goes backwards."
                )
                begin = earliest[tp]
            else:
                begin = start_positions[tp]
            if until > begin:
                ranges.append(KafkaOffsetRange(tp[0], tp[1], begin, until))
        return ranges

    def commit(self, end: dict) -> None:
        # Nothing to do: the checkpoint already holds `end`; Kafka is never told.
        pass

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    # ---- executor side -----------------------------------------------------------

    def read(self, partition: KafkaOffsetRange) -> Iterator[pa.RecordBatch]:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        consumer = Consumer(
            {
                **self.client_settings,
                "group.id": f"dp-kafka-source-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                # Out-of-range offsets: fail loudly, or jump to the earliest available.
                "auto.offset.reset": "earliest" if not self.fail_on_data_loss else "error",
            }
        )
        where = f"{partition.topic}-{partition.partition}"
        batch = _ArrowBatchBuilder(partition.topic, partition.partition)
        end_offset = partition.end_offset
        try:
            start = partition.start_offset if partition.start_offset >= 0 else OFFSET_BEGINNING
            consumer.assign([TopicPartition(partition.topic, partition.partition, start)])
            last_read = partition.start_offset - 1
            last_progress = time.monotonic()
            while last_read < partition.end_offset - 1:
                wanted = min(_MESSAGES_PER_CONSUME, partition.end_offset - 1 - last_read)
                messages = consumer.consume(num_messages=wanted, timeout=1.0)
                if not messages:
                    if (time.monotonic() - last_progress) * 1000 > self.poll_timeout_ms:
                        raise TimeoutError(
                            f"No records from Kafka {where} for {self.poll_timeout_ms} ms while "
                            f"reading offsets [{last_read + 1}, {partition.end_offset})."
                        )
                    continue
                last_progress = time.monotonic()
                reached_end_of_partition = False
                # The per-record loop is the source's hot path: bound methods, no calls
                # beyond librdkafka's accessors.
                keys, values, offsets = batch.keys.append, batch.values.append, batch.offsets.append
                timestamps_ms, timestamp_types = batch.timestamps_ms.append, batch.timestamp_types.append
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            reached_end_of_partition = True
                            continue
                        raise RuntimeError(f"Kafka error while reading {where}: {error}")
                    offset = message.offset()
                    if offset >= end_offset:
                        last_read = offset
                        break
                    ts_type, ts_ms = message.timestamp()
                    keys(message.key())
                    values(message.value())
                    offsets(offset)
                    timestamps_ms(ts_ms if ts_type else None)
                    timestamp_types(_TIMESTAMP_TYPE_IDS.get(ts_type, -1))
                    last_read = offset
                if len(batch) >= _ROWS_PER_ARROW_BATCH:
                    yield batch.take()
                if reached_end_of_partition and last_read < partition.end_offset - 1:
                    self._data_loss(
                        f"Kafka partition {where} ended at offset {last_read + 1} while the "
                        f"planned range was [{partition.start_offset}, {partition.end_offset})."
                    )
                    break
            if len(batch):
                yield batch.take()
        finally:
            consumer.close()


class _ArrowBatchBuilder:
    """Per-record lists of one topic-partition, turned into Arrow record batches.

    Only the varying fields are kept per record (key, value, offset, timestamp in ms,
    timestamp type; ``read`` appends to the lists directly); topic and partition are
    constant per task and the timestamp column is built from integers, so no Python
    object is created per record beyond what librdkafka already returned.
    """

    def __init__(self, topic: str, partition: int):
        self.topic = topic
        self.partition = partition
        self._clear()

    def _clear(self) -> None:
        self.keys: list = []
        self.values: list = []
        self.offsets: list[int] = []
        self.timestamps_ms: list = []
        self.timestamp_types: list[int] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def take(self) -> pa.RecordBatch:
        batch = kafka_record_batch(
            self.topic, self.partition, self.keys, self.values, self.offsets,
            self.timestamps_ms, self.timestamp_types,
        )
        self._clear()
        return batch


def kafka_record_batch(
    topic: str,
    partition: int,
    keys: list,
    values: list,
    offsets: list[int],
    timestamps_ms: list,
    timestamp_types: list[int],
) -> pa.RecordBatch:
    """An Arrow record batch in :data:`KAFKA_SOURCE_SCHEMA` from per-record lists.

    ``timestamps_ms`` holds epoch milliseconds or None (timestamp not available).
    """
    count = len(offsets)
    timestamps = pa.array(timestamps_ms, type=pa.int64())
    return pa.RecordBatch.from_arrays(
        [
            pa.array(keys, type=pa.binary()),
            pa.array(values, type=pa.binary()),
            pa.array([topic] * count, type=pa.string()),
            pa.array([partition] * count, type=pa.int32()),
            pa.array(offsets, type=pa.int64()),
            pc.multiply(timestamps, 1000).cast(_ARROW_TIMESTAMP),
            pa.array(timestamp_types, type=pa.int32()),
        ],
        schema=_ARROW_SOURCE_SCHEMA,
    )


class KafkaDataSource(DataSource):
    """``spark.readStream.format("dp_kafka")`` / ``df.writeStream.format("dp_kafka")``."""

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def schema(self) -> StructType:
        return KAFKA_SOURCE_SCHEMA

    def streamReader(self, schema: StructType) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)

    def streamWriter(self, schema: StructType, overwrite: bool):
        from spark_apps.streaming.kafka.sink import KafkaStreamWriter

        return KafkaStreamWriter(self.options, schema)

    def writer(self, schema: StructType, overwrite: bool):
        from spark_apps.streaming.kafka.sink import KafkaBatchWriter

        return KafkaBatchWriter(self.options, schema)
