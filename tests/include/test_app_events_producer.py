"""The app-events producer: records as the schema says, skew, determinism, broken records that are
what they claim, pacing, and delivery to the real broker (keys, counts, a missing topic)."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from include.producers import app_events as producer
from spark_apps.streaming.app_events import schema

START_MS = 1_767_607_200_000  # 2026-01-05 10:00 UTC


def _bodies(events):
    return [json.loads(e.value) for e in events if e.invalid_kind is None]


def test_records_follow_the_schema_and_are_keyed_by_user():
    events = producer.generate_events(2000, seed=1, start_ms=START_MS, spacing_ms=250)
    assert all(e.invalid_kind is None for e in events)
    for i, (e, body) in enumerate(zip(events, _bodies(events))):
        assert set(body) == set(schema.FIELD_NAMES)
        assert e.key == str(body["user_id"]).encode()
        assert body["category"] in schema.CATEGORIES
        assert 0 <= body["watch_time_s"] <= producer.VIDEO_LENGTH_S <= schema.MAX_WATCH_TIME_S
        assert isinstance(body["liked"], bool) and isinstance(body["user_id"], int)
        assert body["event_time_ms"] == START_MS + i * 250
    assert len({b["event_id"] for b in _bodies(events)}) == 2000


def test_same_seed_same_stream_other_seed_other_stream():
    first = producer.generate_events(300, seed=5, start_ms=START_MS, spacing_ms=10, invalid_share=0.1)
    again = producer.generate_events(300, seed=5, start_ms=START_MS, spacing_ms=10, invalid_share=0.1)
    other = producer.generate_events(300, seed=6, start_ms=START_MS, spacing_ms=10, invalid_share=0.1)
    assert [(e.key, e.value, e.invalid_kind) for e in first] == [(e.key, e.value, e.invalid_kind) for e in again]
    assert [e.value for e in first] != [e.value for e in other]


def test_categories_and_users_are_skewed():
    bodies = _bodies(producer.generate_events(20_000, seed=2, start_ms=START_MS, users=1000))
    by_category = Counter(b["category"] for b in bodies)
    by_user = Counter(b["user_id"] for b in bodies)
    assert set(by_category) == set(schema.CATEGORIES)
    top, bottom = by_category.most_common()[0][1], by_category.most_common()[-1][1]
    assert top > 8 * bottom  # Zipf s=1.1 over 12 ranks: about 15x
    median = sorted(by_user.values())[len(by_user) // 2]
    assert by_user.most_common(1)[0][1] > 20 * median
    assert min(by_user) >= producer.FIRST_USER_ID


def test_broken_records_are_what_they_claim():
    events = producer.generate_events(3000, seed=4, start_ms=START_MS, invalid_share=0.2)
    kinds = Counter(e.invalid_kind for e in events)
    assert set(kinds) == {None, *producer.INVALID_KINDS}
    assert 450 < sum(n for k, n in kinds.items() if k) < 750  # ~600 of 3000
    for e in events:
        if e.invalid_kind == "invalid_json":
            with pytest.raises(ValueError):
                json.loads(e.value)
            continue
        body = json.loads(e.value)
        if e.invalid_kind == "missing_field":
            assert len(set(schema.FIELD_NAMES) - set(body)) == 1
        elif e.invalid_kind == "unknown_category":
            assert body["category"] not in schema.CATEGORIES
        elif e.invalid_kind == "out_of_range":
            assert body["watch_time_s"] < 0
        elif e.invalid_kind == "wrong_type":
            assert sum(isinstance(body[k], str) for k in ("watch_time_s", "liked", "event_time_ms")) + \
                isinstance(body["user_id"], float) == 1


def test_invalid_share_must_be_a_fraction():
    with pytest.raises(ValueError):
        producer.generate_events(1, invalid_share=1.5)


def test_cli_checks_its_arguments():
    with pytest.raises(SystemExit):
        producer.parse_args(["--bootstrap", "x", "--rate", "0"])  # as fast as possible needs a count
    with pytest.raises(SystemExit):
        producer.parse_args(["--bootstrap", "x", "--count", "5"])  # a count is sent as fast as possible
    args = producer.parse_args(["--bootstrap", "x", "--rate", "0", "--count", "5", "--start-ms", "1"])
    assert (args.count, args.start_ms, args.rate) == (5, 1, 0)


def test_count_mode_delivers_every_record_keyed_by_user(kafka_broker):
    topic = kafka_broker.create_topic(partitions=3)
    report = producer.run_count(kafka_broker.bootstrap, 2500, topic, seed=9, start_ms=START_MS, spacing_ms=10,
                                invalid_share=0.1, chunk=1000)
    assert (report.produced, report.delivered, report.failed) == (2500, 2500, 0)
    assert report.valid + report.invalid == 2500 and report.invalid > 0
    records = kafka_broker.consume_all(topic, partitions=3)
    expected = producer.generate_events(2500, seed=9, start_ms=START_MS, spacing_ms=10, invalid_share=0.1)
    assert sorted(r.value() for r in records) == sorted(e.value for e in expected)
    partitions_of_user: dict[bytes, set[int]] = {}
    for r in records:
        partitions_of_user.setdefault(r.key(), set()).add(r.partition())
    assert all(len(p) == 1 for p in partitions_of_user.values())  # one user's events stay in order


def test_rate_mode_paces_in_ticks(kafka_broker):
    topic = kafka_broker.create_topic(partitions=1)

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    clock = Clock()
    report = producer.run_rate(kafka_broker.bootstrap, 7.5, 4, topic, seed=1, sleep=clock.sleep, clock=clock)
    assert report.delivered == 30 and clock.now == pytest.approx(4.0)
    assert len(kafka_broker.consume_all(topic, partitions=1)) == 30


def test_a_missing_topic_is_not_created_and_fails_at_once(kafka_broker):
    with pytest.raises(producer.TopicMissing, match="'never-created-app' does not exist"):
        producer.run_count(kafka_broker.bootstrap, 1, "never-created-app")
    assert "never-created-app" not in kafka_broker.admin().list_topics(timeout=10).topics


def test_cli_prints_and_returns_the_counts(kafka_broker, capsys):
    topic = kafka_broker.create_topic(partitions=1)
    result = producer.main(["--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--rate", "0", "--count", "40",
                            "--seed", "3", "--invalid-share", "0.5"])
    assert json.loads(capsys.readouterr().out.strip()) == result
    assert result["delivered"] == 40 and result["invalid"] > 0
