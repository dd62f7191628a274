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


def test_valid_json_events_become_typed_rows(spark):
    payloads = [
        event(),  # the seed's shape: integer value, timestamp as a string
        event(host="server2", metricName="response_time_ms", value=12.5, region="us-east-1"),
        event(metricName="error_rate_percentage", value=1.5e-3, timestamp=T0 + 1),  # integer timestamp
    ]
    valid, dead = transforms.parse_metric_json(kafka_frame(spark, payloads))
    assert dead.count() == 0
    rows = sorted(tuple(r) for r in valid.collect())
    assert rows == [
        ("server1", "error_rate_percentage", "eu-west-1", T0 + 1, datetime(2024, 6, 20, 9, 47, 0, 1000),
         0.0015, "metric-message", 0, 2),
        ("server1", "memory_usage_gb", "eu-west-1", T0, datetime(2024, 6, 20, 9, 47), 7.0, "metric-message", 0, 0),
        ("server2", "response_time_ms", "us-east-1", T0, datetime(2024, 6, 20, 9, 47), 12.5, "metric-message", 0, 1),
    ]
    assert valid.columns == transforms.METRIC_COLUMNS


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
    valid, dead = transforms.parse_metric_json(frame)
    assert [r.source_offset for r in valid.collect()] == [len(cases)]
    got = {r.source_offset: (r.reason, r.source_topic, r.source_partition, r.raw_value) for r in dead.collect()}
    expected = {
        offset: (reason, "metric-message", 0, None if p is None else (p.encode() if isinstance(p, str) else p))
        for offset, (p, reason) in enumerate(cases)
    }
    assert got == expected


def test_dead_letter_records_carry_reason_offset_and_exact_raw_bytes(spark):
    frame = kafka_frame(spark, ["{not json", b"\x80\x81"])
    _, dead = transforms.parse_metric_json(frame)
    records = {json.loads(r.value)["source_offset"]: (r.key, json.loads(r.value))
               for r in transforms.dead_letter_records(dead).collect()}
    key, body = records[0]
    assert key == b"metric-message:0:0"
    assert body == {"reason": "invalid_json", "source_topic": "metric-message", "source_partition": 0,
                    "source_offset": 0, "raw_value_text": "{not json", "raw_value_base64": body["raw_value_base64"]}
    assert b64decode(body["raw_value_base64"]) == b"{not json"
    _, not_utf8 = records[1]
    assert not_utf8.get("raw_value_text") is None  # not valid UTF-8: only the exact base64
    assert b64decode(not_utf8["raw_value_base64"]) == b"\x80\x81"


def test_protobuf_round_trip_keeps_every_field(spark):
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    metrics = metric_rows(spark, [("server1", "memory_usage_gb", T0, 7.0, 10),
                                  ("server2", "disk_io_rate_mbps", T0 + 61000, 123.25, 11)])
    encoded = transforms.to_protobuf(metrics)
    first = sorted(encoded.collect(), key=lambda r: r.key)[0]
    assert first.key == b"server1"
    message = Metric.FromString(bytes(first.value))  # independent decode with the generated class
    assert (message.host, message.metric_name, message.event_time_ms, message.value, message.source_offset) == (
        "server1", "memory_usage_gb", T0, 7.0, 10)

    as_kafka = encoded.selectExpr("value", "'metric-protobuf' AS topic", "1 AS partition", "5L AS offset")
    decoded, dead = transforms.from_protobuf(as_kafka)
    assert dead.count() == 0
    assert sorted(tuple(r) for r in decoded.collect()) == sorted(tuple(r) for r in metrics.collect())


def test_undecodable_or_incomplete_protobuf_records_are_dead_letters(spark):
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    unknown_metric = Metric(host="server1", metric_name="cpu_temp", region="eu-west-1", event_time_ms=T0,
                            value=1.0, source_topic="metric-message").SerializeToString()
    good = Metric(host="server1", metric_name="response_time_ms", region="eu-west-1", event_time_ms=T0,
                  value=3.0, source_topic="metric-message", source_partition=1, source_offset=9).SerializeToString()
    not_a_number = Metric(host="server1", metric_name="response_time_ms", region="eu-west-1", event_time_ms=T0,
                          value=float("nan"), source_topic="metric-message").SerializeToString()
    payloads = [b'{"host": "server1"}', b"", None, unknown_metric, b"\x0a\xff", good, not_a_number]
    valid, dead = transforms.from_protobuf(kafka_frame(spark, payloads, topic="metric-protobuf"))
    reasons = {r.source_offset: r.reason for r in dead.collect()}
    assert reasons[0].startswith("undecodable_protobuf:")
    assert reasons[1] == "invalid_metric:host,metric_name,region,source_topic"  # empty bytes = empty message
    assert reasons[2] == "empty_value"
    assert reasons[3] == "invalid_metric:metric_name"
    assert reasons[4].startswith("undecodable_protobuf:")  # truncated length-delimited field
    assert reasons[6] == "invalid_metric:value"
    assert set(reasons) == {0, 1, 2, 3, 4, 6}
    assert {r.source_topic for r in dead.collect()} == {"metric-protobuf"}
    assert [(r.host, r.source_partition, r.source_offset) for r in valid.collect()] == [("server1", 1, 9)]


def test_per_minute_aggregates_by_hand(spark):
    metrics = metric_rows(spark, [
        ("server1", "memory_usage_gb", T0 + 1000, 4.0, 0),
        ("server1", "memory_usage_gb", T0 + 59999, 8.0, 1),
        ("server1", "memory_usage_gb", T0 + 60000, 5.0, 2),   # next minute
        ("server1", "response_time_ms", T0 + 5000, 100.0, 3),
        ("server2", "memory_usage_gb", T0 + 2000, 6.0, 4),
        ("server1", "memory_usage_gb", T0 + 30000, 3.0, 5),
    ])
    rows = sorted(tuple(r) for r in transforms.per_minute_aggregates(metrics).collect())
    minute0, minute1 = datetime(2024, 6, 20, 9, 47), datetime(2024, 6, 20, 9, 48)
    assert rows == [
        (minute0, "server1", "memory_usage_gb", 3, 15.0, 3.0, 8.0, 5.0),
        (minute0, "server1", "response_time_ms", 1, 100.0, 100.0, 100.0, 100.0),
        (minute0, "server2", "memory_usage_gb", 1, 6.0, 6.0, 6.0, 6.0),
        (minute1, "server1", "memory_usage_gb", 1, 5.0, 5.0, 5.0, 5.0),
    ]


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
    metrics = metric_rows(spark, [
        ("server1", "memory_usage_gb", T0, 7.0, 0),
        ("server1", "memory_usage_gb", T0, 7.0, 0),   # republished by a replayed batch
        ("server1", "memory_usage_gb", T0, 7.0, 1),   # same content, another source record
    ])
    assert sorted(r.source_offset for r in transforms.deduplicate_by_source(metrics).collect()) == [0, 1]


def test_metric_names_agree_with_the_producer():
    from include.producers.metrics import METRIC_NAMES

    assert tuple(transforms.METRIC_NAMES) == tuple(METRIC_NAMES)


def test_a_batch_of_only_undecodable_records_still_decodes_to_dead_letters(spark):
    # Streaming batches are per partition: one may hold nothing but bad records.
    valid, dead = transforms.from_protobuf(kafka_frame(spark, [b"\x0a\xffnot protobuf"], topic="metric-protobuf"))
    assert valid.count() == 0
    assert [r.reason.split(":")[0] for r in dead.collect()] == ["undecodable_protobuf"]


def test_decoding_task_sends_the_same_dead_letters_as_from_protobuf(spark):
    import json

    import pyarrow as pa

    from spark_apps.streaming.metrics import codec
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    good = Metric(host="server1", metric_name="response_time_ms", region="eu-west-1", event_time_ms=T0,
                  value=3.0, source_topic="metric-message", source_partition=1, source_offset=9).SerializeToString()
    payloads = [b'{"host": "server1"}', good, None, b"\x0a\xff\xfe"]  # last: not UTF-8 either
    frame = kafka_frame(spark, payloads, topic="metric-protobuf")
    _, dead = transforms.from_protobuf(frame)
    expected = {bytes(r.key): json.loads(bytes(r.value)) for r in transforms.dead_letter_records(dead).collect()}

    sent = []
    decode = codec.decode_protobuf_sending_dead_letters(lambda batches: sent.extend(batches))
    arrow = transforms.kafka_columns(frame).toArrow().to_batches()
    valid = pa.Table.from_batches(list(decode(iter(arrow))), schema=codec.METRIC_PROTOBUF_SCHEMA)
    assert valid.column("source_offset").to_pylist() == [9]
    got = {k: json.loads(v) for batch in sent
           for k, v in zip(batch.column("key").to_pylist(), batch.column("value").to_pylist())}
    assert got == expected and len(got) == 3
