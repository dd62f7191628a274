"""`dp kafka` against the real broker: topics, put (arguments, stdin, keys, headers, partitions),
get (earliest, latest, an offset, a time; with and without a consumer group and commits; JSON,
Avro and Protobuf values), lag, and the one-line errors (unknown topic, unreachable broker,
bad offset)."""
from __future__ import annotations

import io
import json
import time
import uuid

import pytest

from include.platform import cli
from include.platform.stack import free_port


@pytest.fixture
def dp(kafka_broker, capsys):
    """Run `dp kafka --bootstrap <test broker> ...`: (exit code, stdout lines, stderr)."""

    def run(*args: str, stdin: str | None = None, bootstrap: str | None = None):
        if stdin is not None:
            pytest.MonkeyPatch().setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(["kafka", "--bootstrap", bootstrap or kafka_broker.bootstrap, *args])
        out, err = capsys.readouterr()
        return code, [line for line in out.splitlines() if line], err

    run.bootstrap = kafka_broker.bootstrap
    return run


def _records(lines):
    return [json.loads(line) for line in lines]


def _topic(prefix="cli"):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_topics_create_list_describe(dp):
    name = _topic()
    code, out, _ = dp("topics", "create", name, "--partitions", "3", "--retention-ms", "86400000")
    assert code == 0 and out == [f"created {name} (3 partitions)"]
    code, out, _ = dp("topics", "list")
    assert code == 0 and f"{name}\t3 partitions" in out
    code, out, _ = dp("topics", "describe", name)
    assert code == 0
    assert out[0] == f"topic {name}: 3 partitions, format raw"
    assert "  retention.ms = 86400000" in out
    assert [line.split("\t")[0].strip() for line in out[-3:]] == ["0", "1", "2"]
    code, _, err = dp("topics", "create", name, "--partitions", "1")
    assert code == 1 and err.strip() == f"error: topic {name!r} already exists (`dp kafka topics describe {name}`)"


def test_put_and_get_with_keys_headers_partitions_and_stdin(dp):
    name = _topic()
    assert dp("topics", "create", name, "--partitions", "2")[0] == 0
    code, out, _ = dp("put", name, "--key", "k1", "--value", '{"a": 1}', "-H", "source=test", "--partition", "1")
    assert code == 0 and out == [f"{name}\tpartition 1\toffset 0"]
    code, out, _ = dp("put", name, "--key-separator", "|", "--partition", "0", stdin='k2|{"a": 2}\nk3|{"a": 3}\n\n')
    assert code == 0 and out == [f"{name}\tpartition 0\toffset 0", f"{name}\tpartition 0\toffset 1"]

    code, out, err = dp("get", name, "--from", "earliest", "--format", "json")
    assert code == 0 and err.strip().endswith("3 record(s)")
    got = sorted(_records(out), key=lambda r: (r["partition"], r["offset"]))
    assert [(r["partition"], r["offset"], r["key"], r["value"]) for r in got] == [
        (0, 0, "k2", {"a": 2}), (0, 1, "k3", {"a": 3}), (1, 0, "k1", {"a": 1})]
    assert got[2]["headers"] == {"source": "test"}
    assert got[0]["timestamp"].endswith("Z")

    # --max, one partition, an offset
    code, out, _ = dp("get", name, "--partition", "0", "--from", "1", "--format", "json")
    assert [(r["offset"], r["value"]) for r in _records(out)] == [(1, {"a": 3})]
    code, out, _ = dp("get", name, "--from", "earliest", "--max", "1")
    assert code == 0 and len(out) == 1
    # latest: nothing yet
    code, out, _ = dp("get", name, "--from", "latest", "--timeout", "2")
    assert code == 0 and out == []


def test_get_from_a_time(dp):
    name = _topic()
    assert dp("topics", "create", name, "--partitions", "1")[0] == 0
    assert dp("put", name, "--value", "before")[0] == 0
    time.sleep(0.05)
    boundary = int(time.time() * 1000)
    time.sleep(0.05)
    assert dp("put", name, "--value", "after")[0] == 0
    code, out, _ = dp("get", name, "--from", f"@{boundary}")
    assert code == 0 and [r["value"] for r in _records(out)] == ["after"]
    code, out, _ = dp("get", name, "--from", "2000-01-01T00:00:00Z")
    assert [r["value"] for r in _records(out)] == ["before", "after"]


def test_consumer_group_with_and_without_commits_and_lag(dp):
    name, group = _topic(), _topic("group")
    assert dp("topics", "create", name, "--partitions", "1")[0] == 0
    assert dp("put", name, stdin="".join(f"v{i}\n" for i in range(5)))[0] == 0

    code, _, err = dp("lag", group)
    assert code == 1 and f"consumer group {group!r} has no committed offsets" in err

    # Reading as the group without --commit moves nothing.
    code, out, _ = dp("get", name, "--group", group, "--max", "2")
    assert [r["value"] for r in _records(out)] == ["v0", "v1"]
    assert dp("lag", group)[0] == 1

    code, out, _ = dp("get", name, "--group", group, "--commit", "--max", "2")
    assert [r["value"] for r in _records(out)] == ["v0", "v1"]
    code, out, _ = dp("lag", group)
    assert code == 0 and out[1:] == [f"{name}\t0\t2\t5\t3", "total lag 3"]

    # The group resumes at its committed offset; --commit to the end leaves no lag.
    code, out, _ = dp("get", name, "--group", group, "--commit")
    assert [r["value"] for r in _records(out)] == ["v2", "v3", "v4"]
    assert dp("lag", group, "--topic", name)[1][-1] == "total lag 0"
    # --from overrides the committed offsets for a group too.
    code, out, _ = dp("get", name, "--group", group, "--from", "earliest", "--max", "1")
    assert [r["value"] for r in _records(out)] == ["v0"]


def test_avro_and_protobuf_values_are_decoded(dp):
    from datetime import datetime, timezone

    from spark_apps.streaming.metrics import metric_pb2

    avro_topic, proto_topic = _topic("avro"), _topic("proto")
    for topic in (avro_topic, proto_topic):
        assert dp("topics", "create", topic)[0] == 0
    event = {"threadname": "thread1", "process_time_ms": 61, "memory_used_mb": 61.5,
             "event_time": 1767225600000, "seq": 7, "run_id": "r1", "received_at": 1767225600100}
    # The CLI writes Avro values given as JSON with the current schema: the value of an Avro topic.
    from include.platform import kafka_cli

    headers: list = []
    avro_bytes = kafka_cli._encode_for("websocket-events", json.dumps(event).encode(), headers)
    assert headers == [("avro.schema", b"websocket_event.v1")]
    assert kafka_cli.decode_value(avro_bytes, "avro", dict(headers)) == {
        **event, "event_time": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "received_at": datetime(2026, 1, 1, 0, 0, 0, 100000, tzinfo=timezone.utc)}

    metric = metric_pb2.Metric(host="web-1", metric_name="cpu_usage", region="eu", value=0.5)
    _produce(dp, proto_topic, metric.SerializeToString(), [])
    _produce(dp, avro_topic, avro_bytes, headers)
    _produce(dp, avro_topic, b"\xff\xff", headers)  # not Avro of that schema: printed as undecodable

    code, out, _ = dp("get", avro_topic, "--format", "avro", "--from", "earliest")
    values = [r["value"] for r in _records(out)]
    assert values[0] == {**event, "event_time": "2026-01-01T00:00:00Z", "received_at": "2026-01-01T00:00:00.100000Z"}
    assert values[1]["undecodable"].startswith("avro: ") and values[1]["base64"] == "//8="
    code, out, _ = dp("get", proto_topic, "--format", "protobuf", "--from", "earliest")
    assert _records(out)[0]["value"] == {"host": "web-1", "metric_name": "cpu_usage", "region": "eu", "value": 0.5}
    assert kafka_cli.topic_format("websocket-events") == "avro"
    assert kafka_cli.topic_format("metric-protobuf") == "protobuf"


def _produce(dp, topic, value: bytes, headers):
    """Bytes as a producer of the platform writes them (the CLI's put takes text)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": dp.bootstrap})
    producer.produce(topic, value=value, headers=headers)
    assert producer.flush(15) == 0


def test_one_line_errors(dp):
    name = _topic()
    assert dp("topics", "create", name, "--partitions", "1")[0] == 0
    assert dp("put", name, "--value", "x")[0] == 0

    code, _, err = dp("get", "no_such_topic", "--from", "earliest")
    assert code == 1 and err.startswith("error: topic 'no_such_topic' does not exist") and err.count("\n") == 1
    code, _, err = dp("put", "no_such_topic", "--value", "x")
    assert code == 1 and "does not exist" in err
    code, _, err = dp("get", name, "--from", "5")
    assert code == 1 and err.strip() == (f"error: offset 5 is out of range for {name} partition 0: it holds offsets "
                                         "0..0 (1 is the next to be written)")
    code, _, err = dp("get", name, "--from", "yesterday")
    assert code == 1 and "--from 'yesterday': use earliest, latest" in err
    code, _, err = dp("get", name, "--from", "-3")
    assert code == 1 and "an offset is 0 or more" in err
    code, _, err = dp("get", name, "--commit")
    assert code == 1 and "--commit needs --group" in err
    dead = f"127.0.0.1:{free_port()}"
    code, _, err = dp("topics", "list", bootstrap=dead)
    assert code == 1 and err.startswith(f"error: cannot reach the Kafka broker at {dead}") and err.count("\n") == 1
