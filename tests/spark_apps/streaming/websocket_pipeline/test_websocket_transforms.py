"""The WebSocket pipeline's Spark functions on tiny hand-made inputs with hand-computed answers:
message checks and their reasons, Avro out and in (to_avro/from_avro with the repository's
schema), schema evolution (a newer reader schema reads old records), sequence gaps, and the
per-thread window statistics."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from spark_apps.streaming.websocket import schema, transforms

T0 = "2026-01-01T00:00:00.000Z"


def _messages(spark, payloads):
    received = datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    return spark.createDataFrame([(i, received, p) for i, p in enumerate(payloads)],
                                 "idx LONG, received_at TIMESTAMP, payload STRING")


def _good(**fields):
    message = {"process_time_ms": 61, "threadname": "thread1", "memory_used_mb": 61, "event_time": T0, "seq": 1,
               "run_id": "r1"}
    message.update(fields)
    return json.dumps({k: v for k, v in message.items() if v is not _DROP})


_DROP = object()


def test_parse_messages_reasons(spark):
    payloads = [
        _good(),
        _good(memory_used_mb=61.5, seq=2),
        "",
        '{"threadname": "thread1", "seq": ',
        "[1, 2]",
        _good(memory_used_mb=_DROP, run_id=None),
        _good(process_time_ms="fast", event_time="yesterday"),
        _good(process_time_ms=61.5),
        _good(threadname="  "),
        _good(process_time_ms=-1, seq=0),
        _good(threadname=7),
    ]
    rows = transforms.parse_messages(_messages(spark, payloads)).orderBy("idx").collect()
    assert [r["reason"] for r in rows] == [
        None, None, "empty_message", "invalid_json", "not_a_json_object",
        "missing_field:memory_used_mb,run_id", "wrong_type:process_time_ms,event_time",
        "wrong_type:process_time_ms", "wrong_type:threadname", "out_of_range:process_time_ms,seq",
        "wrong_type:threadname",
    ]
    first = rows[0]
    assert (first["threadname"], first["process_time_ms"], first["memory_used_mb"], first["seq"], first["run_id"]) == (
        "thread1", 61, 61.0, 1, "r1")
    assert first["event_time"] == datetime(2026, 1, 1)  # the session's UTC, naive
    assert rows[1]["memory_used_mb"] == 61.5
    assert rows[3]["payload"] == payloads[3]


def test_avro_records_round_trip_with_the_header(spark):
    parsed = transforms.parse_messages(_messages(spark, [_good(), _good(threadname="thread2", seq=2)]))
    records = transforms.event_records(transforms.valid_events(parsed))
    rows = records.collect()
    assert [bytes(r["key"]) for r in rows] == [b"thread1", b"thread2"]
    assert [[(h["key"], bytes(h["value"])) for h in r["headers"]] for r in rows] == [
        [("avro.schema", b"websocket_event.v1")]] * 2
    # The bytes are plain Avro of the .avsc (no registry framing): an independent decoder reads them.
    import io

    import fastavro

    decoded = fastavro.schemaless_reader(io.BytesIO(bytes(rows[0]["value"])), fastavro.parse_schema(schema.schema()),
                                         None)
    assert decoded["threadname"] == "thread1" and decoded["seq"] == 1 and decoded["memory_used_mb"] == 61.0
    assert decoded["event_time"] == datetime(2026, 1, 1, tzinfo=timezone.utc)

    kafka_like = records.selectExpr("key", "value", "headers", "'websocket-events' AS topic", "0 AS partition",
                                    "CAST(0 AS BIGINT) AS offset", "current_timestamp() AS timestamp")
    back = transforms.decode_events(kafka_like).orderBy("seq").collect()
    assert [(r["threadname"], r["seq"], r["decode_error"], r["writer_schema"]) for r in back] == [
        ("thread1", 1, None, "websocket_event.v1"), ("thread2", 2, None, "websocket_event.v1")]


def test_a_newer_reader_schema_reads_old_records(spark):
    """Schema evolution: v2 adds an optional field with a default; v1 records decode with it set
    to the default, and the v1 fields unchanged."""
    parsed = transforms.parse_messages(_messages(spark, [_good(seq=5)]))
    records = transforms.event_records(transforms.valid_events(parsed)).selectExpr(
        "key", "value", "headers", "'t' AS topic", "0 AS partition", "CAST(0 AS BIGINT) AS offset",
        "current_timestamp() AS timestamp")
    v2 = schema.schema()
    v2["fields"] = v2["fields"] + [{"name": "host", "type": ["null", "string"], "default": None},
                                   {"name": "priority", "type": "int", "default": 3}]
    rows = transforms.decode_events(records, reader_schema_json=json.dumps(v2)).collect()
    assert len(rows) == 1
    row = rows[0].asDict()
    assert row["decode_error"] is None and row["host"] is None and row["priority"] == 3
    assert (row["threadname"], row["seq"], row["process_time_ms"]) == ("thread1", 5, 61)


def test_undecodable_and_unknown_versions_are_marked_not_failed(spark):
    frame = spark.createDataFrame(
        [(b"\xff\xfe\x01", [("avro.schema", b"websocket_event.v1")]), (b"\x00", [("avro.schema", b"websocket_event.v9")])],
        "value BINARY, headers ARRAY<STRUCT<key: STRING, value: BINARY>>",
    ).selectExpr("CAST(NULL AS BINARY) AS key", "value", "headers", "'t' AS topic", "0 AS partition",
                 "CAST(0 AS BIGINT) AS offset", "current_timestamp() AS timestamp")
    errors = [r["decode_error"] for r in transforms.decode_events(frame).collect()]
    assert errors == ["undecodable_avro:websocket_event.v1", "unknown_schema:websocket_event.v9"]


@pytest.mark.parametrize("seqs,before,expected", [
    ([1, 2, 3], None, (0, 0, 3)),
    ([4, 5, 9], 3, (3, 0, 9)),        # 6, 7, 8 lost
    ([12, 13], 9, (2, 0, 13)),        # 10, 11 lost between batches
    ([13, 14], 13, (0, 1, 14)),       # 13 again: a repeat
    ([3, 5, 5, 6], None, (1, 1, 6)),  # a run first seen at 3 counts from there
])
def test_count_gaps(seqs, before, expected):
    assert transforms.count_gaps(seqs, before) == expected


def test_thread_stats_per_thread_and_window(spark):
    rows = [
        ("thread1", 60, 100.0, "2026-01-01 00:00:10"),
        ("thread1", 20, 50.0, "2026-01-01 00:00:50"),
        ("thread2", 7, 10.0, "2026-01-01 00:00:30"),
        ("thread1", 5, 1.5, "2026-01-01 00:01:00"),  # the next minute
    ]
    frame = spark.createDataFrame(rows, "threadname STRING, process_time_ms BIGINT, memory_used_mb DOUBLE, t STRING") \
        .selectExpr("*", "to_timestamp(t) AS event_time")
    got = {(r["window_start"], r["threadname"]): r.asDict() for r in transforms.thread_stats(frame).collect()}
    first = got[(datetime(2026, 1, 1, 0, 0), "thread1")]
    assert first["window_end"] == datetime(2026, 1, 1, 0, 1)
    assert (first["avg_process_time_ms"], first["max_process_time_ms"], first["min_process_time_ms"]) == (40.0, 60, 20)
    assert (first["avg_memory_used_mb"], first["max_memory_used_mb"], first["min_memory_used_mb"],
            first["total_memory_used_mb"], first["count"]) == (75.0, 100.0, 50.0, 150.0, 2)
    assert got[(datetime(2026, 1, 1, 0, 0), "thread2")]["count"] == 1
    assert got[(datetime(2026, 1, 1, 0, 1), "thread1")]["total_memory_used_mb"] == 1.5
    assert len(got) == 3

    records = transforms.stats_records(transforms.thread_stats(frame)).collect()
    keys = sorted(bytes(r["key"]).decode() for r in records)
    assert keys == ["thread1|2026-01-01T00:00:00Z", "thread1|2026-01-01T00:01:00Z", "thread2|2026-01-01T00:00:00Z"]
    value = json.loads(next(bytes(r["value"]) for r in records if bytes(r["key"]) == b"thread2|2026-01-01T00:00:00Z"))
    assert value == {"window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:01:00Z", "threadname": "thread2",
                     "avg_process_time_ms": 7.0, "max_process_time_ms": 7, "min_process_time_ms": 7,
                     "avg_memory_used_mb": 10.0, "max_memory_used_mb": 10.0, "min_memory_used_mb": 10.0,
                     "total_memory_used_mb": 10.0, "count": 1}


def test_the_results_schema_declares_the_ingest_tables():
    from pathlib import Path

    from spark_apps.streaming.websocket import ingest

    sql = (Path(__file__).resolve().parents[4] / "include" / "sql" / "results_schema.sql").read_text()
    assert ingest.RUNS_DDL + ";" in sql and ingest.BATCHES_DDL + ";" in sql
