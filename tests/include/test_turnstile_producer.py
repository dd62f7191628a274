"""The turnstile producer: the real week read in event-time order with the files' own values, keys
by turnstile, pacing by speed-up on a fake clock, the generated weeks' faults, delivery to the real
broker (the bytes on the topic are the JSON of the file rows) and no topic creation."""
from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime

import pytest

from include.producers import turnstile as producer

SAMPLE = producer.SAMPLE_DIR / "turnstile-test.csv"


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def file_rows() -> list[list[str]]:
    with SAMPLE.open(newline="") as handle:
        return list(csv.reader(handle))


def test_the_real_week_is_read_whole_in_event_time_order_with_the_original_values():
    rows = file_rows()
    readings = producer.read_readings()
    assert len(readings) == len(rows) - 1 == 1721
    assert list(readings[0].fields) == list(producer.FIELDS)  # header names without the trailing spaces
    times = [r.at for r in readings]
    assert times == sorted(times)
    file_times = [datetime.strptime(f"{row[6]} {row[7]}", "%m/%d/%Y %H:%M:%S") for row in rows[1:]]
    assert file_times != sorted(file_times)  # the file is by turnstile, not by time
    assert (times[0], times[-1]) == (min(file_times), max(file_times)) == (datetime(2015, 6, 20), datetime(2015, 6, 26, 22))
    # Every file row is sent once, with its values untouched.
    as_sent = Counter(tuple(r.fields.values()) for r in readings)
    assert as_sent == Counter(tuple(row) for row in rows[1:])
    # Same-time readings keep their file order (A002 before A006 at 06/20 00:00).
    first_instant = [r.fields["C/A"] for r in readings if r.at == times[0]]
    assert first_instant == [row[0] for row in rows[1:] if row[6] == "06/20/2015" and row[7] == "00:00:00"]


def test_events_are_keyed_by_turnstile_and_carry_the_row_as_json():
    reading = producer.read_readings()[0]
    event = reading.event()
    assert event.key == b"A002:R051:02-00-00"
    assert json.loads(event.value) == dict(zip(producer.FIELDS, file_rows()[1]))


def test_a_speedup_paces_event_time_and_none_sends_at_once():
    readings = [producer.Reading({}, datetime(2015, 6, 20, h)) for h in (0, 0, 4, 8)]
    assert [(at, len(due)) for at, due in producer.schedule(readings, 1440.0)] == [(0.0, 2), (10.0, 1), (20.0, 1)]
    assert [(at, len(due)) for at, due in producer.schedule(readings, None)] == [(0.0, 4)]


def test_publish_waits_for_each_instant_on_the_clock(kafka_broker, monkeypatch):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=1)
    clock = FakeClock()
    readings = [producer.Reading({"C/A": "A", "UNIT": "U", "SCP": "S", "n": str(h)}, datetime(2015, 6, 20, h))
                for h in (0, 4, 8)]
    report = producer.publish(readings, kafka_broker.bootstrap, topic, speedup=1440.0, clock=clock, sleep=clock.sleep)
    assert report.delivered == 3
    assert [round(s, 6) for s in clock.sleeps] == [10.0, 10.0]


def test_the_real_week_reaches_the_broker_keyed_by_turnstile(kafka_broker):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=3)
    report = producer.run_replay(kafka_broker.bootstrap, topic)
    assert report.delivered == 1721 and report.failed == 0
    records = kafka_broker.consume_all(topic, partitions=3)
    assert len(records) == 1721
    by_key: dict[bytes, list[dict]] = {}
    for record in records:
        by_key.setdefault(record.key(), []).append(json.loads(record.value()))
    assert set(by_key) == {f"{row[0]}:{row[1]}:{row[2]}".encode() for row in file_rows()[1:]}
    assert len(by_key) == 40  # the week's turnstiles (35 SCPs, some under several C/A)
    for key, bodies in by_key.items():
        assert {f"{b['C/A']}:{b['UNIT']}:{b['SCP']}".encode() for b in bodies} == {key}
        stamps = [producer.event_time(b) for b in bodies]  # one partition per key: in order
        assert stamps == sorted(stamps)


def test_a_missing_topic_is_reported_at_once(kafka_broker):  # noqa: F811
    with pytest.raises(producer.TopicMissing):
        producer.publish(producer.read_readings()[:1], kafka_broker.bootstrap, "turnstile-no-such-topic")


def test_a_generated_week_has_every_fault_of_the_real_files():
    faults = producer.Faults(count_down=0.2, reset=0.2, wrap=0.2, recovr_duplicate=0.05, late=0.05)
    readings = producer.generate_week(stations=20, turnstiles_per_station=4, days=7, seed=3, faults=faults)
    assert producer.generate_week(stations=20, turnstiles_per_station=4, days=7, seed=3, faults=faults) == readings
    turnstiles = {r.turnstile for r in readings}
    assert len(turnstiles) == 80
    regular = [r for r in readings if r.fields["DESC"].strip() == "REGULAR"]
    assert len(regular) == 80 * 42  # a reading every 4 h for a week
    recovr = [r for r in readings if r.fields["DESC"].strip() == "RECOVR AUD"]
    regular_keys = {(r.turnstile, r.at) for r in regular}
    assert recovr and all((r.turnstile, r.at) in regular_keys for r in recovr)
    # Late readings: published after a later reading of the same turnstile.
    late = 0
    newest: dict[str, datetime] = {}
    for r in regular:
        if r.at < newest.get(r.turnstile, datetime.min):
            late += 1
        newest[r.turnstile] = max(r.at, newest.get(r.turnstile, datetime.min))
    assert late > 0
    # Counters: some count down, some wrap or reset (a drop of millions), values beyond 2^31.
    series: dict[str, list[int]] = {}
    for r in sorted(regular, key=lambda r: r.at):
        series.setdefault(r.turnstile, []).append(int(r.fields["ENTRIES"].strip()))
    steps = [b - a for values in series.values() for a, b in zip(values, values[1:])]
    assert any(-10_000 < s < 0 for s in steps)  # counting down
    assert any(s < -1_000_000 for s in steps)  # wrapped or reset
    assert max(max(v) for v in series.values()) > 2**31
    assert any(r.fields["ENTRIES"].startswith("0") and len(r.fields["ENTRIES"].strip()) == 10 for r in readings)
    assert any(r.fields["STATION"].endswith(" ") for r in readings)
