"""Spark's own Kafka connector (the ``kafka`` format, through :mod:`spark_apps.streaming.kafka_io`)
against the real broker: what the platform relies on it for.

* a query restarted from its checkpoint neither skips nor re-reads committed records
  (also when ``maxOffsetsPerTrigger`` splits the backlog, and for a processingTime query
  stopped while records keep arriving);
* deleted records (retention, ``delete_records``) and a recreated topic behind the
  checkpoint's offsets are data loss: with ``failOnDataLoss`` true (the jobs' setting) the
  query fails and says so; false skips what is gone.
"""
from __future__ import annotations

import time

import pytest
from pyspark.errors import StreamingQueryException

from spark_apps.streaming.kafka_io import client_options, read_kafka_stream, write_kafka_batch

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(600)]

QUERY_TIMEOUT_S = 180
DATA_LOSS = "Some data may have been lost"  # Spark's message when failOnDataLoss is true


def keyed_records(count: int, partitions: int = 2, prefix: str = "m") -> list[tuple[bytes, bytes, int]]:
    return [(f"{prefix}-key-{i}".encode(), f"{prefix}-value-{i}".encode(), i % partitions) for i in range(count)]


def expected_rows(records, first_offsets=None) -> list[tuple]:
    """(partition, offset, key, value) the broker assigns to records produced in order."""
    next_offset = dict(first_offsets or {})
    rows = []
    for key, value, partition in records:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        rows.append((partition, offset, key, value))
    return sorted(rows)


def as_tuples(rows) -> list[tuple]:
    return sorted((r.partition, r.offset, bytes(r.key), bytes(r.value)) for r in rows)


def start_collecting(stream_df, checkpoint, collected: list | dict, batches: list | None = None, **trigger):
    """A foreachBatch query appending each batch's rows to ``collected``; a dict instead keeps
    them by batch id, the way an exactly-once sink does (a batch run again after a stop before
    its commit replaces its first attempt, which must have had the very same records)."""
    def collect(batch_df, batch_id):
        rows = batch_df.collect()
        if isinstance(collected, dict):
            if batch_id in collected:
                assert as_tuples(rows) == as_tuples(collected[batch_id]), f"batch {batch_id} replayed differently"
            collected[batch_id] = rows
        else:
            collected.extend(rows)
        if batches is not None:
            batches.append((batch_id, len(rows)))

    return (stream_df.writeStream.foreachBatch(collect).option("checkpointLocation", str(checkpoint))
            .trigger(**(trigger or {"availableNow": True})).start())


def run_until_caught_up(stream_df, checkpoint, batches: list | None = None, collected: list | dict | None = None):
    """An availableNow run: every record up to the end offsets at its start, then it stops."""
    collected = [] if collected is None else collected
    query = start_collecting(stream_df, checkpoint, collected, batches)
    try:
        assert query.awaitTermination(QUERY_TIMEOUT_S), f"query did not finish within {QUERY_TIMEOUT_S}s"
    finally:
        if query.isActive:
            query.stop()
    return collected


def test_a_restarted_query_neither_skips_nor_rereads(spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    checkpoint = tmp_path / "checkpoint"

    def stream():
        return read_kafka_stream(spark, kafka_broker.bootstrap, topic, startingOffsets="earliest",
                                 maxOffsetsPerTrigger=4)

    first = keyed_records(10)
    kafka_broker.produce(topic, first)
    batches: list = []
    rows = run_until_caught_up(stream(), checkpoint, batches)
    assert as_tuples(rows) == expected_rows(first)
    assert [n for _, n in batches] == [4, 4, 2]  # the limit splits the backlog, nothing twice

    more = keyed_records(6, prefix="more")
    kafka_broker.produce(topic, more)
    assert as_tuples(run_until_caught_up(stream(), checkpoint)) == expected_rows(more, {0: 5, 1: 5})
    assert run_until_caught_up(stream(), checkpoint) == []  # nothing new: nothing read

    # A processingTime query stopped while records keep arriving, then restarted. The stop may
    # land inside a batch, after its rows were handed over but before its commit: the restart
    # runs that batch again (same id, same offsets), so the rows are kept by batch id.
    by_batch: dict = {}
    query = start_collecting(stream(), checkpoint, by_batch, processingTime="200 milliseconds")
    later = keyed_records(40, prefix="later")
    try:
        for chunk in range(0, 40, 8):
            kafka_broker.produce(topic, later[chunk:chunk + 8])
            time.sleep(0.3)
    finally:
        query.stop()
    assert query.exception() is None
    run_until_caught_up(stream(), checkpoint, collected=by_batch)
    assert as_tuples([row for rows in by_batch.values() for row in rows]) == expected_rows(later, {0: 8, 1: 8})


def test_deleted_records_behind_the_checkpoint_fail_the_query(spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    checkpoint = tmp_path / "checkpoint"

    def stream(fail_on_data_loss: bool):
        return read_kafka_stream(spark, kafka_broker.bootstrap, topic, startingOffsets="earliest",
                                 failOnDataLoss=fail_on_data_loss)

    kafka_broker.produce(topic, keyed_records(10))
    assert len(run_until_caught_up(stream(True), checkpoint)) == 10  # committed: 5 and 5
    unread = keyed_records(10, prefix="unread")
    kafka_broker.produce(topic, unread)
    # Partition 0 loses offsets 5-7, which the query has not read yet (as retention would).
    kafka_broker.delete_records(topic, {0: 8})

    with pytest.raises(StreamingQueryException, match=rf"{DATA_LOSS}(.|\n)*offset \[5, 10\)"):
        run_until_caught_up(stream(True), checkpoint)
    rows = run_until_caught_up(stream(False), checkpoint)  # told to skip what is gone
    assert as_tuples(rows) == [r for r in expected_rows(unread, {0: 5, 1: 5}) if r[:2] not in {(0, 5), (0, 6), (0, 7)}]


def test_a_recreated_topic_behind_the_checkpoint_fails_the_query(spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    checkpoint = tmp_path / "checkpoint"
    stream = read_kafka_stream(spark, kafka_broker.bootstrap, topic, startingOffsets="earliest")  # failOnDataLoss default

    kafka_broker.produce(topic, keyed_records(10))
    assert len(run_until_caught_up(stream, checkpoint)) == 10
    # The checkpoint says offset 5 in each partition; the recreated topic has only 1.
    kafka_broker.delete_topic(topic)
    kafka_broker.create_topic(topic, partitions=2)
    kafka_broker.produce(topic, keyed_records(2, prefix="fresh"))
    with pytest.raises(StreamingQueryException, match=rf"{DATA_LOSS}(.|\n)*offset was changed from 5 to 1"):
        run_until_caught_up(stream, checkpoint)


def test_batch_sink_publishes_keys_and_values_and_client_options_pass_through(spark, kafka_broker):
    topic = kafka_broker.create_topic(partitions=1)
    frame = spark.createDataFrame([(b"k1", b"v1"), (None, b"v2")], "key binary, value binary")
    write_kafka_batch(frame, kafka_broker.bootstrap, topic)
    assert sorted((r.value(), r.key()) for r in kafka_broker.consume_all(topic, 1)) == [(b"v1", b"k1"), (b"v2", None)]
    assert client_options("b:9092", '{"security.protocol": "SSL", "kafka.ssl.truststore.type": "PEM"}') == {
        "kafka.bootstrap.servers": "b:9092", "kafka.security.protocol": "SSL", "kafka.ssl.truststore.type": "PEM"}
    with pytest.raises(ValueError, match="JSON object"):
        client_options("b:9092", "[1]")
