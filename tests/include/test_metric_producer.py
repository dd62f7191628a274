"""The server-metrics producer: event shapes, broken events, delivery accounting against a real broker."""
from __future__ import annotations

import json
import random
import socket
from collections import Counter

import pytest

from include.producers import metrics as producer


def classify(payload: bytes) -> str | None:
    """Independent check of a payload: None when valid, else which way it is broken."""
    try:
        event = json.loads(payload)
    except ValueError:
        return "invalid_json"
    if any(name not in event for name in producer.REQUIRED_FIELDS):
        return "missing_field"
    if not isinstance(event["value"], (int, float)) or not event["timestamp"].isdigit():
        return "wrong_type"
    if event["metricName"] not in producer.METRIC_NAMES:
        return "unknown_metric_name"
    return None


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_burst_is_one_snapshot_of_every_host_and_metric():
    events = producer.generate_events(3 * 5, random.Random(1), hosts=3, timestamp_ms=1718876852088)
    decoded = [json.loads(e.value) for e in events]
    assert {(d["host"], d["metricName"]) for d in decoded} == {
        (h, m) for h in ("server1", "server2", "server3") for m in producer.METRIC_NAMES
    }
    assert all(classify(e.value) is None and e.invalid_kind is None for e in events)
    assert {d["timestamp"] for d in decoded} == {"1718876852088"}
    assert all(e.key.decode() == d["host"] for e, d in zip(events, decoded))
    for d in decoded:
        low, high, _ = producer.VALUE_RANGES[d["metricName"]]
        assert low <= d["value"] <= high
        assert d["region"] in producer.REGIONS


def test_same_seed_same_events_and_broken_events_are_what_they_claim():
    first = producer.generate_events(400, random.Random(7), invalid_share=0.5, timestamp_ms=1)
    again = producer.generate_events(400, random.Random(7), invalid_share=0.5, timestamp_ms=1)
    assert first == again
    kinds = Counter(e.invalid_kind for e in first)
    assert set(kinds) == {None, *producer.INVALID_KINDS}
    assert all(classify(e.value) == e.invalid_kind for e in first)


def test_invalid_share_must_be_a_fraction():
    with pytest.raises(ValueError, match="invalid_share"):
        producer.generate_events(1, random.Random(), invalid_share=1.5)


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_bursts_are_delivered_keyed_by_host_and_counted(kafka_broker):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=2)
    pauses = []
    report = producer.run_bursts(
        kafka_broker.bootstrap, topic, bursts=3, interval_s=5, hosts=4, invalid_share=0.2,
        seed=3, sleep=pauses.append,
    )
    assert pauses == [5, 5]  # a pause between bursts, none after the last
    assert report.produced == report.delivered == 3 * 4 * 5 and report.failed == 0

    records = kafka_broker.consume_all(topic, partitions=2)
    assert len(records) == report.delivered
    found = Counter(classify(r.value()) for r in records)
    assert found[None] == report.valid
    assert {k: found[k] for k in producer.INVALID_KINDS if found[k]} == report.invalid_by_kind
    assert report.invalid > 0
    # Keyed by host: every host's records sit in one partition.
    partitions_by_host = {}
    for record in records:
        partitions_by_host.setdefault(record.key(), set()).add(record.partition())
    assert set(partitions_by_host) == {f"server{i}".encode() for i in range(1, 5)}
    assert all(len(parts) == 1 for parts in partitions_by_host.values())


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_without_a_burst_count_it_produces_until_stopped(kafka_broker):  # noqa: F811
    class Stopped(Exception):
        pass

    topic = kafka_broker.create_topic(partitions=1)
    pauses = []

    def sleep(seconds):  # the task being stopped during its fourth pause
        pauses.append(seconds)
        if len(pauses) == 4:
            raise Stopped

    with pytest.raises(Stopped):
        producer.run_bursts(kafka_broker.bootstrap, topic, bursts=None, interval_s=5, hosts=1, sleep=sleep)
    # Four bursts (one before each pause) of one host x five metrics, each delivered before its pause.
    assert len(kafka_broker.consume_all(topic, partitions=1)) == 4 * 5


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_a_missing_topic_is_not_created_and_fails_at_once(kafka_broker):  # noqa: F811
    import time

    started = time.monotonic()
    with pytest.raises(producer.TopicMissing, match="'never-created' does not exist.*platform_bootstrap"):
        producer.run_bursts(kafka_broker.bootstrap, "never-created", bursts=1, hosts=1)
    assert time.monotonic() - started < 30  # not a delivery timeout (minutes)
    assert "never-created" not in kafka_broker.admin().list_topics(timeout=10).topics


@pytest.mark.timeout(120)
def test_undelivered_records_raise_with_the_counts():
    unreachable = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(producer.DeliveryFailed) as failure:
        producer.run_bursts(
            unreachable, "nowhere", bursts=1, hosts=2,
            producer_config={"message.timeout.ms": 2000, "socket.connection.setup.timeout.ms": 1000},
        )
    report = failure.value.report
    assert report.produced == 10 and report.delivered == 0 and report.failed == 10
    assert "10 of 10 records not delivered" in str(failure.value)


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_cli_rate_mode_prints_and_returns_the_counts(kafka_broker, capsys):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=1)
    result = producer.main([
        "--bootstrap", kafka_broker.bootstrap, "--topic", topic,
        "--rate", "15", "--duration", "2", "--invalid-share", "0", "--seed", "1",
    ])
    assert result["produced"] == result["delivered"] == result["valid"] == 30
    assert json.loads(capsys.readouterr().out.strip()) == result
    assert len(kafka_broker.consume_all(topic, partitions=1)) == 30
