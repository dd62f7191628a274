"""The app-events job's DataFrame functions on tiny hand-made inputs with hand-computed answers:
validation reasons, dead letters, clean rows, window stats (distinct users included)."""
from __future__ import annotations

import json
from base64 import b64decode, b64encode
from datetime import date, datetime, timezone

import pytest

from include.producers.app_events import INVALID_KINDS, generate_events
from spark_apps.streaming.app_events import schema, tables, transforms
from tests.spark_apps.streaming.app_events.events import (
    STATS_EXPECTED_1MIN,
    STATS_EXPECTED_2MIN,
    STATS_INPUT,
    T0_MS,
    event,
    kafka_frame,
)

pytestmark = pytest.mark.spark

GOOD = event("x1", 42, "Dance", 12.5, True, T0_MS)
INGEST_MS = T0_MS + 3_600_000  # kafka_frame's default: the records reached Kafka an hour after T0


def reasons(spark, values) -> list[str | None]:
    rows = transforms.checked(kafka_frame(spark, values)).orderBy("offset").collect()
    return [row.reason for row in rows]


def _without(*names: str) -> dict:
    return {k: v for k, v in GOOD.items() if k not in names}


def _with(**values) -> dict:
    return {**GOOD, **values}


BAD = [
    (None, "empty_value"),
    (b"", "empty_value"),
    (b'{"event_id": "x1", "user_id": 4', "invalid_json"),
    (b'{"event_id": "\xff"}', "invalid_json"),  # not UTF-8
    (b'{"user_id": 1, "user_id": 2}', "invalid_json"),  # duplicate keys
    (b"[1, 2]", "not_a_json_object"),
    (b"42", "not_a_json_object"),
    (_without("category"), "missing_field:category"),
    (_without("user_id", "event_time_ms"), "missing_field:user_id,event_time_ms"),
    (_with(liked=None), "missing_field:liked"),  # JSON null counts as missing
    (_with(watch_time_s="12.5"), "wrong_type:watch_time_s"),
    (_with(liked="true"), "wrong_type:liked"),
    (_with(liked=1), "wrong_type:liked"),
    (_with(user_id=42.5), "wrong_type:user_id"),
    (_with(user_id="42"), "wrong_type:user_id"),
    (_with(event_time_ms="2026-01-05T10:00:00Z"), "wrong_type:event_time_ms"),
    (_with(event_id=7, category=["Dance"]), "wrong_type:event_id,category"),
    (_without("video_id") | {"liked": "no"}, "missing_field:video_id"),  # missing wins over wrong type
    (_with(watch_time_s=-0.5), "out_of_range:watch_time_s"),
    (_with(watch_time_s=3600.5), "out_of_range:watch_time_s"),
    (_with(user_id=0), "out_of_range:user_id"),
    (_with(event_time_ms=1_736_071_200), "out_of_range:event_time_ms"),  # seconds sent as ms
    (_with(category="Crypto/NFT"), "unknown_category"),
    (_with(category="dance"), "unknown_category"),  # categories are case sensitive
    (_with(event_time_ms=INGEST_MS + schema.MAX_FUTURE_S * 1000 + 1), "event_time_in_future"),
]


def test_bad_records_get_their_reason(spark):
    assert reasons(spark, [value for value, _ in BAD]) == [reason for _, reason in BAD]


def test_valid_edges_and_extra_fields_pass(spark):
    values = [
        GOOD,
        _with(watch_time_s=0), _with(watch_time_s=3600), _with(user_id=1),
        _with(event_time_ms=INGEST_MS + schema.MAX_FUTURE_S * 1000),  # exactly at the limit
        _with(app_version="9.1", device={"os": "android"}),  # fields we do not know are fine
        _with(watch_time_s=1.5e1),  # a JSON double
    ]
    assert reasons(spark, values) == [None] * len(values)


def test_clean_rows_carry_typed_fields_event_date_and_source(spark):
    late_evening = T0_MS + 14 * 3_600_000 - 1  # 2026-01-05 23:59:59.999 UTC
    frame = kafka_frame(spark, [GOOD, b"oops", _with(event_id="x2", event_time_ms=late_evening)], partition=2,
                        ingest_ms=T0_MS + 86_400_000)  # the next day: neither is in the future
    rows = sorted(transforms.clean_events(transforms.checked(frame)).collect(), key=lambda r: r.source_offset)
    assert list(rows[0].asDict()) == transforms.CLEAN_COLUMNS
    first, second = rows
    assert (first.event_id, first.user_id, first.video_id, first.category, first.watch_time_s, first.liked) == (
        "x1", 42, "v0001", "Dance", 12.5, True)
    assert first.event_time == datetime(2026, 1, 5, 10, 0)  # the session's UTC wall clock
    assert (first.event_time_ms, first.event_date, first.source_partition, first.source_offset) == (
        T0_MS, date(2026, 1, 5), 2, 0)
    assert (second.event_id, second.event_date, second.source_offset) == ("x2", date(2026, 1, 5), 2)


def test_dead_letters_carry_reason_coordinates_and_raw_bytes(spark):
    frame = kafka_frame(spark, [GOOD, _with(category="Crypto"), b"\xff", None], partition=1)
    letters = transforms.dead_letters(transforms.checked(frame)).collect()
    assert sorted(r.key.decode() for r in letters) == ["app-events:1:1", "app-events:1:2", "app-events:1:3"]
    by_offset = {body["source_offset"]: body for body in (json.loads(r.value) for r in letters)}
    raw = json.dumps(_with(category="Crypto"), separators=(",", ":"))
    assert by_offset[1] == {"reason": "unknown_category", "source_topic": "app-events", "source_partition": 1,
                            "source_offset": 1, "raw_value_text": raw,
                            "raw_value_base64": b64encode(raw.encode()).decode()}
    assert by_offset[2]["reason"] == "invalid_json" and "raw_value_text" not in by_offset[2]
    assert b64decode(by_offset[2]["raw_value_base64"]) == b"\xff"
    assert by_offset[3] == {"reason": "empty_value", "source_topic": "app-events", "source_partition": 1,
                            "source_offset": 3}


def test_reason_counts_group_by_kind(spark):
    values = [GOOD, _without("liked"), _without("category"), _with(liked="x"), b"{", _with(category="Nope")]
    counts = {r.reason_kind: r["count"] for r in transforms.reason_counts(transforms.checked(
        kafka_frame(spark, values))).collect()}
    assert counts == {"missing_field": 2, "wrong_type": 1, "invalid_json": 1, "unknown_category": 1}


def _stats(spark, values, window=transforms.DEFAULT_WINDOW) -> dict:
    clean = transforms.clean_events(transforms.checked(kafka_frame(spark, values)))
    got = {}
    for r in transforms.category_stats(clean, window).collect():
        window_ms = int(r.window_start.replace(tzinfo=timezone.utc).timestamp() * 1000)
        got[(r.category, window_ms)] = (r.views, r.likes, r.avg_watch_time_s, r.total_watch_time_s, r.distinct_users)
    return got


def test_window_stats_by_hand(spark):
    values = [*STATS_INPUT, b"not json", _with(category="Crypto")]  # the bad records count nowhere
    assert _stats(spark, values) == STATS_EXPECTED_1MIN


def test_window_length_is_configurable(spark):
    assert _stats(spark, STATS_INPUT, "2 minutes") == STATS_EXPECTED_2MIN


def test_distinct_users_counts_each_user_once_per_window(spark):
    # 40 views by 7 users in one window, each user several times: views 40, distinct users 7.
    values = [event(f"e{i}", 100 + i % 7, "Pets", 1.0, False, T0_MS + i * 1000) for i in range(40)]
    assert _stats(spark, values) == {("Pets", T0_MS): (40, 0, 1.0, 40.0, 7)}


def test_mysql_values_follow_the_tables_schema(spark):
    clean = transforms.clean_events(transforms.checked(kafka_frame(spark, STATS_INPUT)))
    mysql = transforms.mysql_stats_values(transforms.category_stats(clean))
    assert mysql.schema.fieldNames() == tables.STATS_SCHEMA.fieldNames() == transforms.STATS_COLUMNS
    assert [f.dataType for f in mysql.schema.fields] == [f.dataType for f in tables.STATS_SCHEMA.fields]
    row = mysql.where("category = 'Comedy'").collect()[0]
    assert (row.window_start, row.window_end) == (datetime(2026, 1, 5, 10, 0), datetime(2026, 1, 5, 10, 1))


def test_every_broken_kind_of_the_producer_is_dead_lettered_and_its_good_events_pass(spark):
    events = generate_events(400, seed=3, start_ms=T0_MS, spacing_ms=100, invalid_share=0.3)
    checked = transforms.checked(kafka_frame(spark, [e.value for e in events])).orderBy("offset").collect()
    expected_prefix = {"invalid_json": "invalid_json", "missing_field": "missing_field:", "wrong_type": "wrong_type:",
                       "unknown_category": "unknown_category", "out_of_range": "out_of_range:watch_time_s"}
    kinds = set()
    for produced, row in zip(events, checked):
        if produced.invalid_kind is None:
            assert row.reason is None, (produced.value, row.reason)
        else:
            kinds.add(produced.invalid_kind)
            assert row.reason is not None and row.reason.startswith(expected_prefix[produced.invalid_kind]), (
                produced.value, row.reason)
    assert kinds == set(INVALID_KINDS)
