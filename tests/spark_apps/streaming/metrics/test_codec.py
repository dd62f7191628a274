"""The record-level codecs (no Spark): tiny hand-made records, hand-computed answers."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from spark_apps.streaming.metrics import codec

T0 = 1718876820000  # 2024-06-20 09:47:00 UTC


def event(**overrides) -> bytes:
    base = {"host": "server1", "metricName": "memory_usage_gb", "region": "eu-west-1",
            "timestamp": str(T0), "value": 7}
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


INGEST_US = 1718876830000000  # when the records reached the topic (job B's clock)


def kafka_batch(values, topic="metric-message", partition=0, first_offset=0) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({
        "value": pa.array(values, pa.binary()),
        "topic": pa.array([topic] * len(values), pa.string()),
        "partition": pa.array([partition] * len(values), pa.int32()),
        "offset": pa.array(range(first_offset, first_offset + len(values)), pa.int64()),
        "ingest_time_us": pa.array([INGEST_US + i for i in range(len(values))], pa.int64()),
    })


@pytest.mark.parametrize("raw, expected", [
    (event(), (None, ("server1", "memory_usage_gb", "eu-west-1", T0, 7.0))),
    (event(value=12.5, timestamp=T0 + 1), (None, ("server1", "memory_usage_gb", "eu-west-1", T0 + 1, 12.5))),
    (event(timestamp="123\n"), (None, ("server1", "memory_usage_gb", "eu-west-1", 123, 7.0))),
    (event(host="\t"), (None, ("\t", "memory_usage_gb", "eu-west-1", T0, 7.0))),  # only spaces are trimmed
    (b"  " + event() + b" trailing text", (None, ("server1", "memory_usage_gb", "eu-west-1", T0, 7.0))),
    (event(host="caf\u00e9"), (None, ("caf\u00e9", "memory_usage_gb", "eu-west-1", T0, 7.0))),
    (None, ("empty_value", None)),
    (b"", ("empty_value", None)),
    (b"  ", ("invalid_json", None)),
    (event()[:-3], ("invalid_json", None)),
    (b"\xef\xbb\xbf" + event(), ("invalid_json", None)),
    (b'{"host": "a", "host": "b"}', ("invalid_json", None)),
    (b'{"host": "a", "x": {"k": 1, "k": 2}}', ("invalid_json", None)),
    (event()[:-1] + b', "extra": NaN}', ("invalid_json", None)),
    (event(host="\ud800"), ("invalid_json", None)),
    (b"[1, 2]", ("not_a_json_object", None)),
    (b"null", ("not_a_json_object", None)),
    (event(host=..., region=None), ("missing_field:host,region", None)),
    (b"{}", ("missing_field:host,metricName,region,timestamp,value", None)),
    (event(host=" ", value=True), ("wrong_type:host,value", None)),
    (event(metricName=5, timestamp="1.5"), ("wrong_type:metricName,timestamp", None)),
    (event(timestamp="1" * 19), ("wrong_type:timestamp", None)),
    (event(timestamp=2**63), ("wrong_type:timestamp", None)),
    (event(timestamp=9_223_372_036_854_776), ("wrong_type:timestamp", None)),  # beyond Spark timestamps
    (event(timestamp=-9_223_372_036_854_775), (None, ("server1", "memory_usage_gb", "eu-west-1",
                                                     -9_223_372_036_854_775, 7.0))),
    (event(value="7"), ("wrong_type:value", None)),
    (event()[:-2] + b"1e400}", ("wrong_type:value", None)),
    (event(metricName="cpu_temp"), ("unknown_metric_name:cpu_temp", None)),
])
def test_check_metric_json(raw, expected):
    assert codec.check_metric_json(raw) == expected


def test_invalid_utf8_inside_a_string_becomes_the_replacement_character():
    raw = event(host="X").replace(b'"X"', b'"\xff"')
    assert codec.check_metric_json(raw) == (None, ("\ufffd", "memory_usage_gb", "eu-west-1", T0, 7.0))
    assert codec.check_metric_json(b"\xff\xfe") == ("invalid_json", None)


def dead_letters(batch: pa.RecordBatch) -> dict:
    """{key: parsed JSON body} of (key, value) dead-letter rows."""
    return {k: json.loads(v) for k, v in zip(batch.column("key").to_pylist(), batch.column("value").to_pylist())}


def test_bad_json_events_become_dead_letters_with_coordinates_and_exact_bytes():
    from base64 import b64decode

    out = codec.metric_json_batch(kafka_batch([b'{"host": 1', b"\x80\x81", None, event()], partition=3,
                                              first_offset=40))
    assert out.column("reason").to_pylist() == ["invalid_json", "invalid_json", "empty_value", None]
    letters = dead_letters(out.slice(0, 3))
    assert letters[b"metric-message:3:40"] == {
        "reason": "invalid_json", "source_topic": "metric-message", "source_partition": 3, "source_offset": 40,
        "raw_value_text": '{"host": 1', "raw_value_base64": "eyJob3N0IjogMQ=="}
    assert b64decode("eyJob3N0IjogMQ==") == b'{"host": 1'
    not_utf8 = letters[b"metric-message:3:41"]
    assert "raw_value_text" not in not_utf8  # not valid UTF-8: only the exact base64
    assert b64decode(not_utf8["raw_value_base64"]) == b"\x80\x81"
    assert letters[b"metric-message:3:42"] == {  # a null record: nothing to keep but where it was
        "reason": "empty_value", "source_topic": "metric-message", "source_partition": 3, "source_offset": 42}


def test_metric_json_batch_encodes_valid_events_with_their_source_coordinates():
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    out = codec.metric_json_batch(kafka_batch([event(host="server2", value=2.25), b"42"], partition=1,
                                              first_offset=7))
    assert out.schema == codec.ENCODED_JSON_SCHEMA
    rows = out.to_pylist()
    assert [r["reason"] for r in rows] == [None, "not_a_json_object"]
    assert rows[0]["key"] == b"server2"
    assert Metric.FromString(rows[0]["value"]) == Metric(
        host="server2", metric_name="memory_usage_gb", region="eu-west-1", event_time_ms=T0, value=2.25,
        source_topic="metric-message", source_partition=1, source_offset=7)
    assert rows[1]["key"] == b"metric-message:1:8"  # the dead letter of the bad record
    assert json.loads(rows[1]["value"])["raw_value_text"] == "42"


def test_a_reused_message_does_not_leak_fields_between_records():
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    out = codec.metric_json_batch(kafka_batch([event(region="a" * 50), event(region="b")]))
    second = Metric.FromString(out.column("value")[1].as_py())
    assert (second.region, second.source_offset) == ("b", 1)


def test_encoded_events_decode_to_every_field():
    encoded = codec.metric_json_batch(kafka_batch(
        [event(host="server1", metricName="response_time_ms", region="us-east-1", value=3.5)],
        partition=2, first_offset=99))
    decoded = codec.metric_protobuf_batch(pa.RecordBatch.from_pydict({
        "value": encoded.column("value"), "topic": ["metric-protobuf"],
        "partition": pa.array([0], pa.int32()), "offset": pa.array([5], pa.int64()),
        "ingest_time_us": pa.array([INGEST_US], pa.int64())}))
    assert decoded.schema == codec.DECODED_PROTOBUF_SCHEMA
    row = decoded.to_pylist()[0]
    assert row == {"reason": None, "host": "server1", "metric_name": "response_time_ms", "region": "us-east-1",
                   "event_time_ms": T0, "value": 3.5, "source_topic": "metric-message", "source_partition": 2,
                   "source_offset": 99, "ingest_time_us": INGEST_US, "dead_letter_key": None,
                   "dead_letter_value": None}


def test_check_metric_protobuf_reasons():
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    def metric(**overrides):
        fields = dict(host="server1", metric_name="memory_usage_gb", region="eu-west-1", event_time_ms=T0,
                      value=1.0, source_topic="metric-message")
        fields.update(overrides)
        return Metric(**fields).SerializeToString()

    assert codec.check_metric_protobuf(metric())[0] is None
    assert codec.check_metric_protobuf(None) == ("empty_value", None)
    assert codec.check_metric_protobuf(b"")[0] == "invalid_metric:host,metric_name,region,source_topic"
    assert codec.check_metric_protobuf(metric(metric_name="cpu", host=""))[0] == "invalid_metric:host,metric_name"
    assert codec.check_metric_protobuf(metric(value=float("inf")))[0] == "invalid_metric:value"
    assert codec.check_metric_protobuf(metric(event_time_ms=2**62))[0] == "invalid_metric:event_time_ms"
    reason, message = codec.check_metric_protobuf(b"\x0a\xff")
    assert reason.startswith("undecodable_protobuf:") and message is None


def test_decoding_a_batch_of_only_bad_records_gives_typed_null_columns():
    out = codec.metric_protobuf_batch(kafka_batch([b"\x0a\xff", None], topic="metric-protobuf"))
    assert out.schema == codec.DECODED_PROTOBUF_SCHEMA
    assert out.column("host").null_count == 2 and out.column("event_time_ms").null_count == 2
    assert out.column("reason").to_pylist()[1] == "empty_value"
    assert out.column("ingest_time_us").to_pylist() == [INGEST_US, INGEST_US + 1]


def decode_with_dead_letters(values, **where):
    """(valid rows, {key: dead letter}) of job B's decode of one Kafka batch."""
    rows = codec.metric_protobuf_batch(kafka_batch(values, **where)).to_pylist()
    valid = [r for r in rows if r["reason"] is None]
    letters = {r["dead_letter_key"]: json.loads(r["dead_letter_value"]) for r in rows if r["reason"] is not None}
    assert all(r["dead_letter_key"] is None and r["dead_letter_value"] is None for r in valid)
    assert all(r["host"] is None and r["source_offset"] is None for r in rows if r["reason"] is not None)
    assert all(letter["reason"] == r["reason"] for r in rows if r["reason"] is not None
               for letter in [letters[r["dead_letter_key"]]])
    return valid, letters


def protobuf_metric(**overrides) -> bytes:
    from spark_apps.streaming.metrics.metric_pb2 import Metric

    fields = dict(host="server1", metric_name="response_time_ms", region="eu-west-1", event_time_ms=T0,
                  value=3.0, source_topic="metric-message", source_partition=1, source_offset=9)
    fields.update(overrides)
    return Metric(**fields).SerializeToString()


def test_decoding_keeps_valid_metrics_and_gives_every_bad_record_its_dead_letter():
    from base64 import b64decode

    payloads = [b'{"host": "server1"}', b"", None, protobuf_metric(metric_name="cpu_temp"), b"\x0a\xff",
                protobuf_metric(), protobuf_metric(value=float("nan")), b"\x0a\xff\xfe"]
    valid, letters = decode_with_dead_letters(payloads, topic="metric-protobuf", first_offset=100)
    assert [(r["host"], r["source_partition"], r["source_offset"]) for r in valid] == [("server1", 1, 9)]
    reasons = {key: letter["reason"] for key, letter in letters.items()}
    assert set(reasons) == {f"metric-protobuf:0:{offset}".encode() for offset in (100, 101, 102, 103, 104, 106, 107)}
    assert reasons[b"metric-protobuf:0:100"].startswith("undecodable_protobuf:")
    assert reasons[b"metric-protobuf:0:101"] == "invalid_metric:host,metric_name,region,source_topic"  # empty message
    assert reasons[b"metric-protobuf:0:102"] == "empty_value"
    assert reasons[b"metric-protobuf:0:103"] == "invalid_metric:metric_name"
    assert reasons[b"metric-protobuf:0:104"].startswith("undecodable_protobuf:")  # truncated field
    assert reasons[b"metric-protobuf:0:106"] == "invalid_metric:value"
    # The dead letter names the Protobuf record (where the bad bytes are) and keeps them exactly.
    last = letters[b"metric-protobuf:0:107"]
    assert (last["source_topic"], last["source_partition"], last["source_offset"]) == ("metric-protobuf", 0, 107)
    assert "raw_value_text" not in last and b64decode(last["raw_value_base64"]) == b"\x0a\xff\xfe"


def test_map_batches_applies_the_function_to_each_batch():
    apply = codec.map_batches(lambda b: b.slice(0, 1))
    batches = [kafka_batch([b"a", b"b"]), kafka_batch([b"c"])]
    assert [b.column("value").to_pylist() for b in apply(iter(batches))] == [[b"a"], [b"c"]]
