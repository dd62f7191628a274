"""The pipeline's DataFrame functions on tiny hand-made frames with hand-computed answers."""
from __future__ import annotations

import json
from base64 import b64decode
from datetime import datetime

import pytest

from spark_apps.streaming.metrics import transforms

pytestmark = pytest.mark.spark

KAFKA_SCHEMA = "value binary, topic string, partition int, offset bigint"
T0 = 1718876820000  # 2024-06-20 09:47:00 UTC, a whole minute


def kafka_frame(spark, payloads, topic="metric-message"):
    rows = [(None if p is None else (p.encode() if isinstance(p, str) else p), topic, 0, offset)
            for offset, p in enumerate(payloads)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def event(**overrides):
    base = {"host": "server1", "metricName": "memory_usage_gb", "region": "eu-west-1",
            "timestamp": str(T0), "value": 7}
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def metric_rows(spark, rows):
    """Valid-metric frame from (host, metric_name, event_time_ms, value, source_offset)."""
    data = [(h, m, "eu-west-1", t, v, "metric-message", 0, o) for h, m, t, v, o in rows]
    df = spark.createDataFrame(
        data, "host string, metric_name string, region string, event_time_ms bigint, value double, "
              "source_topic string, source_partition int, source_offset bigint")
    from pyspark.sql import functions as F
    return df.withColumn("event_time", F.timestamp_millis("event_time_ms")).select(*transforms.METRIC_COLUMNS)


def decoded_rows(spark, rows, dead_letters=()):
    """Job B's decoded frame (:data:`transforms.DECODED_COLUMNS`) from valid metrics (host,
    metric_name, event_time_ms, value, source_offset) and dead letters (reason, key)."""
    from pyspark.sql import functions as F

    data = [(None, h, m, "eu-west-1", t, v, "metric-message", 0, o, None, None) for h, m, t, v, o in rows]
    data += [(reason, None, None, None, None, None, None, None, None, key, b'{"reason": "%s"}' % reason.encode())
             for reason, key in dead_letters]
    df = spark.createDataFrame(
        data, "reason string, host string, metric_name string, region string, event_time_ms bigint, value double, "
              "source_topic string, source_partition int, source_offset bigint, dead_letter_key binary, "
              "dead_letter_value binary")
    return (df.withColumn("event_time", F.timestamp_millis("event_time_ms"))
            .withColumn("ingest_time", F.timestamp_millis(F.lit(T0 + 10_000)))
            .select(*transforms.DECODED_COLUMNS))


def decode(kafka_records):
    """Job B's decode of job A's valid output (no dead letters expected here)."""
    protobuf = kafka_records.where("topic = 'metric-protobuf'").selectExpr(
        "value", "topic", "1 AS partition", "monotonically_increasing_id() AS offset", "current_timestamp() AS timestamp")
    decoded = transforms.decode_protobuf(protobuf)
    assert decoded.columns == transforms.DECODED_COLUMNS
    assert decoded.where("reason IS NOT NULL").count() == 0, "unexpected dead letters"
    return decoded.select(*transforms.METRIC_COLUMNS)


def test_valid_json_events_round_trip_through_protobuf_to_typed_rows(spark):
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    payloads = [
        event(),  # the seed's shape: integer value, timestamp as a string
        event(host="server2", metricName="response_time_ms", value=12.5, region="us-east-1"),
        event(metricName="error_rate_percentage", value=1.5e-3, timestamp=T0 + 1),  # integer timestamp
    ]
    records = transforms.json_to_kafka_records(kafka_frame(spark, payloads), "metric-protobuf", "dead")
    assert records.columns == ["topic", "key", "value"]
    first = sorted(records.collect(), key=lambda r: Metric.FromString(bytes(r.value)).source_offset)[0]
    assert (first.topic, bytes(first.key)) == ("metric-protobuf", b"server1")
    valid = decode(records)
    assert valid.columns == transforms.METRIC_COLUMNS
    assert sorted(tuple(r) for r in valid.collect()) == [
        ("server1", "error_rate_percentage", "eu-west-1", T0 + 1, datetime(2024, 6, 20, 9, 47, 0, 1000),
         0.0015, "metric-message", 0, 2),
        ("server1", "memory_usage_gb", "eu-west-1", T0, datetime(2024, 6, 20, 9, 47), 7.0, "metric-message", 0, 0),
        ("server2", "response_time_ms", "us-east-1", T0, datetime(2024, 6, 20, 9, 47), 12.5, "metric-message", 0, 1),
    ]


def test_every_kind_of_bad_event_is_a_dead_letter_with_its_reason_and_offset(spark):
    cases = [
        (event()[:-5], "invalid_json"),
        (b"\xff\xfe not utf-8", "invalid_json"),
        (None, "empty_value"),
        ("", "empty_value"),
        ("[1, 2]", "not_a_json_object"),
        ("42", "not_a_json_object"),
        (event(value=...), "missing_field:value"),
        (event(host=..., region=None), "missing_field:host,region"),  # JSON null counts as missing
        (event(value="abc"), "wrong_type:value"),
        (event(value=True), "wrong_type:value"),
        (event(timestamp="yesterday"), "wrong_type:timestamp"),
        (event(timestamp="1718876852088.5"), "wrong_type:timestamp"),
        (event(host={"name": "server1"}, metricName=5), "wrong_type:host,metricName"),
        (event(region="  "), "wrong_type:region"),
        (event(metricName="cpu_temperature_celsius"), "unknown_metric_name:cpu_temperature_celsius"),
    ]
    frame = kafka_frame(spark, [payload for payload, _ in cases] + [event()])
    records = transforms.json_to_kafka_records(frame, "metric-protobuf", "metric-dead-letter").collect()
    assert [r.source_offset for r in decode(spark.createDataFrame(records)).collect()] == [len(cases)]
    got = {}
    for record in records:
        if record.topic == "metric-dead-letter":
            body = json.loads(bytes(record.value))
            raw = b64decode(body["raw_value_base64"]) if "raw_value_base64" in body else None
            got[body["source_offset"]] = (body["reason"], body["source_topic"], body["source_partition"], raw)
            assert bytes(record.key) == f"metric-message:0:{body['source_offset']}".encode()
    expected = {
        offset: (reason, "metric-message", 0, None if p is None else (p.encode() if isinstance(p, str) else p))
        for offset, (p, reason) in enumerate(cases)
    }
    assert got == expected


def test_server_totals_by_hand(spark):
    metrics = metric_rows(spark, [
        ("server1", "memory_usage_gb", T0, 7.0, 0),
        ("server1", "response_time_ms", T0, 13.0, 1),
        ("server1", "error_rate_percentage", T0, 1.0, 2),
        ("server2", "memory_usage_gb", T0, 2.5, 3),
    ])
    rows = sorted(tuple(r) for r in transforms.server_totals(metrics).collect())
    assert rows == [("server1", 21.0, 3, 7.0), ("server2", 2.5, 1, 2.5)]
    assert transforms.server_totals(metrics).columns == ["server_name", "total_sum", "count", "average"]


def test_deduplicate_drops_republished_records_only(spark):
    decoded = decoded_rows(spark, [
        ("server1", "memory_usage_gb", T0, 7.0, 0),
        ("server1", "memory_usage_gb", T0, 7.0, 0),   # republished by a replayed batch
        ("server1", "memory_usage_gb", T0, 7.0, 1),   # same content, another source record
    ], dead_letters=[("empty_value", b"metric-protobuf:0:5"), ("empty_value", b"metric-protobuf:0:6")])
    rows = transforms.deduplicate_by_source(decoded).collect()
    assert sorted(r.source_offset for r in rows if r.reason is None) == [0, 1]
    assert sorted(bytes(r.dead_letter_key) for r in rows if r.reason) == [b"metric-protobuf:0:5",
                                                                          b"metric-protobuf:0:6"]


def test_protobuf_dead_letters_are_rows_of_the_decoded_frame(spark):
    frame = spark.createDataFrame([(b"\x0a\xffnot protobuf", "metric-protobuf", 1, 7)], KAFKA_SCHEMA)
    [row] = transforms.decode_protobuf(frame.selectExpr("*", "current_timestamp() AS timestamp")).collect()
    assert row.reason.startswith("undecodable_protobuf:") and row.host is None and row.ingest_time is not None
    assert bytes(row.dead_letter_key) == b"metric-protobuf:1:7"
    assert json.loads(bytes(row.dead_letter_value))["reason"] == row.reason


def test_metric_names_agree_with_the_producer():
    from include.producers.metrics import METRIC_NAMES

    assert tuple(transforms.METRIC_NAMES) == tuple(METRIC_NAMES)
