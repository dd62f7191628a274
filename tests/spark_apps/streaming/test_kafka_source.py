"""The Python Kafka source against a real (Tansu) broker, through Spark Structured Streaming."""
from __future__ import annotations

import json

import pytest
from pyspark.errors import StreamingQueryException

from spark_apps.streaming.kafka import read_stream
from spark_apps.streaming.kafka.source import split_read_limit

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(300)]

QUERY_TIMEOUT_S = 120


def keyed_records(count: int, partitions: int = 2, prefix: str = "m") -> list[tuple[bytes, bytes, int]]:
    return [
        (f"{prefix}-key-{i}".encode(), f"{prefix}-value-{i}".encode(), i % partitions)
        for i in range(count)
    ]


def expected_rows(records, first_offsets=None) -> list[tuple]:
    """(partition, offset, key, value) the broker assigns to records produced in order."""
    next_offset = dict(first_offsets or {})
    rows = []
    for key, value, partition in records:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        rows.append((partition, offset, key, value))
    return sorted(rows)


def run_until_caught_up(spark, stream_df, checkpoint, **trigger):
    """Run the query (availableNow unless told otherwise) and return (rows, query)."""
    collected = []

    def collect(batch_df, _batch_id):
        collected.extend(batch_df.collect())

    query = (
        stream_df.writeStream.foreachBatch(collect)
        .option("checkpointLocation", str(checkpoint))
        .trigger(**(trigger or {"availableNow": True}))
        .start()
    )
    try:
        finished = query.awaitTermination(QUERY_TIMEOUT_S)
        assert finished, f"query did not finish within {QUERY_TIMEOUT_S}s"
    finally:
        if query.isActive:
            query.stop()
    return collected, query


def as_tuples(rows) -> list[tuple]:
    return sorted((r.partition, r.offset, bytes(r.key), bytes(r.value)) for r in rows)


def test_reads_every_record_exactly_once_with_native_columns(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    records = keyed_records(300)
    kafka_broker.produce(topic, records)

    stream = read_stream(kafka_spark, kafka_broker.bootstrap, [topic], startingOffsets="earliest")
    rows, _ = run_until_caught_up(kafka_spark, stream, tmp_path / "checkpoint")

    assert stream.schema.simpleString() == (
        "struct<key:binary,value:binary,topic:string,partition:int,offset:bigint,"
        "timestamp:timestamp,timestampType:int>"
    )
    assert as_tuples(rows) == expected_rows(records)
    assert {r.topic for r in rows} == {topic}
    assert {r.timestampType for r in rows} == {0}  # CreateTime, as the producer set it
    assert all(r.timestamp is not None for r in rows)


def test_max_offsets_per_trigger_splits_the_backlog_into_batches(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    records = keyed_records(100)
    kafka_broker.produce(topic, records)

    stream = read_stream(
        kafka_spark, kafka_broker.bootstrap, topic,
        startingOffsets="earliest", maxOffsetsPerTrigger=30,
    )
    rows, query = run_until_caught_up(kafka_spark, stream, tmp_path / "checkpoint")

    batch_sizes = [p["numInputRows"] for p in query.recentProgress if p["numInputRows"]]
    assert batch_sizes == [30, 30, 30, 10]
    assert as_tuples(rows) == expected_rows(records)


def test_starting_offsets_latest_skips_existing_records(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    old = keyed_records(20, prefix="old")
    kafka_broker.produce(topic, old)
    checkpoint = tmp_path / "checkpoint"

    def stream():
        return read_stream(kafka_spark, kafka_broker.bootstrap, topic, startingOffsets="latest")

    first_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
    new = keyed_records(6, prefix="new")
    kafka_broker.produce(topic, new)
    second_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)

    assert first_rows == []
    assert as_tuples(second_rows) == expected_rows(new, first_offsets={0: 10, 1: 10})


def test_explicit_json_starting_offsets(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    records = keyed_records(20)
    kafka_broker.produce(topic, records)
    starting = json.dumps({topic: {"0": 7, "1": -2}})

    stream = read_stream(kafka_spark, kafka_broker.bootstrap, topic, startingOffsets=starting)
    rows, _ = run_until_caught_up(kafka_spark, stream, tmp_path / "checkpoint")

    expected = [row for row in expected_rows(records) if row[0] == 1 or row[1] >= 7]
    assert as_tuples(rows) == expected


def test_explicit_offsets_must_cover_every_partition(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    starting = json.dumps({topic: {"0": 0}})
    stream = read_stream(kafka_spark, kafka_broker.bootstrap, topic, startingOffsets=starting)

    with pytest.raises(StreamingQueryException, match=r"missing: \[\('" + topic):
        run_until_caught_up(kafka_spark, stream, tmp_path / "checkpoint")


def test_restart_from_checkpoint_reads_only_new_records(kafka_spark, kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=2)
    first = keyed_records(40, prefix="first")
    kafka_broker.produce(topic, first)
    checkpoint = tmp_path / "checkpoint"

    def stream():
        return read_stream(
            kafka_spark, kafka_broker.bootstrap, topic,
            startingOffsets="earliest", maxOffsetsPerTrigger=25,
        )

    first_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
    second = keyed_records(30, prefix="second")
    kafka_broker.produce(topic, second)
    second_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
    third_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)

    assert as_tuples(first_rows) == expected_rows(first)
    assert as_tuples(second_rows) == expected_rows(second, first_offsets={0: 20, 1: 20})
    assert third_rows == []


def test_partitions_that_appear_later_are_read_from_their_start(kafka_spark, kafka_broker, tmp_path):
    # The broker cannot add partitions to a topic (no CreatePartitions), so new partitions
    # appear here the other way: a subscribed topic that is created after the first run.
    existing = kafka_broker.create_topic(partitions=1)
    later = f"{existing}_later"
    before = keyed_records(5, partitions=1, prefix="before")
    kafka_broker.produce(existing, before)
    checkpoint = tmp_path / "checkpoint"

    def stream():
        return read_stream(
            kafka_spark, kafka_broker.bootstrap, [existing, later], startingOffsets="latest"
        )

    first_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
    kafka_broker.create_topic(later, partitions=2)
    added = keyed_records(6, prefix="added")
    kafka_broker.produce(later, added)
    second_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)

    assert first_rows == []  # startingOffsets=latest applies to partitions known at start
    assert {r.topic for r in second_rows} == {later}
    assert as_tuples(second_rows) == expected_rows(added)


@pytest.mark.parametrize("fail_on_data_loss", [True, False])
def test_committed_offsets_beyond_a_recreated_topic(
    kafka_spark, kafka_broker, tmp_path, fail_on_data_loss
):
    topic = kafka_broker.create_topic(partitions=2)
    kafka_broker.produce(topic, keyed_records(10, prefix="lost"))
    checkpoint = tmp_path / "checkpoint"

    def stream():
        return read_stream(
            kafka_spark, kafka_broker.bootstrap, topic,
            startingOffsets="earliest", failOnDataLoss=fail_on_data_loss,
        )

    first_rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
    assert len(first_rows) == 10
    # The checkpoint now says offset 5 in each partition; the recreated topic has only 1.
    kafka_broker.delete_topic(topic)
    kafka_broker.create_topic(topic, partitions=2)
    fresh = keyed_records(2, prefix="fresh")
    kafka_broker.produce(topic, fresh)

    if fail_on_data_loss:
        with pytest.raises(StreamingQueryException, match="beyond the broker's end offset"):
            run_until_caught_up(kafka_spark, stream(), checkpoint)
    else:
        rows, _ = run_until_caught_up(kafka_spark, stream(), checkpoint)
        assert as_tuples(rows) == expected_rows(fresh)


def test_split_read_limit_is_proportional_and_exact():
    start = {("a", 0): 0, ("a", 1): 10, ("b", 0): 5}
    end = {("a", 0): 70, ("a", 1): 30, ("b", 0): 15}  # backlog 70, 20, 10
    planned = split_read_limit(start, end, 25)

    assert sum(planned[tp] - start[tp] for tp in start) == 25
    assert planned == {("a", 0): 18, ("a", 1): 15, ("b", 0): 7}  # 17.5, 5, 2.5; tie -> first
    assert split_read_limit(start, end, 1000) == end


def test_kafka_record_batch_has_the_native_columns_and_types():
    from datetime import datetime, timezone

    from spark_apps.streaming.kafka.source import kafka_record_batch

    batch = kafka_record_batch("t", 3, [b"k", None], [None, b"v"], [41, 42], [1718876820123, None], [0, -1])
    assert batch.schema.names == ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType"]
    assert str(batch.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    rows = batch.to_pylist()
    assert [(r["key"], r["value"], r["topic"], r["partition"], r["offset"], r["timestampType"]) for r in rows] == [
        (b"k", None, "t", 3, 41, 0), (None, b"v", "t", 3, 42, -1)]
    assert rows[0]["timestamp"] == datetime(2024, 6, 20, 9, 47, 0, 123000, tzinfo=timezone.utc)
    assert rows[1]["timestamp"] is None
