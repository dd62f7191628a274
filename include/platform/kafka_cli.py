"""``dp kafka``: the platform's Kafka command line, on confluent-kafka.

    dp kafka topics list
    dp kafka topics create NAME --partitions 3 [--retention-ms MS] [--config KEY=VALUE ...]
    dp kafka topics describe NAME
    dp kafka put TOPIC [--key K] [--value V | values from stdin, one per line] [--key-separator SEP]
                       [-H NAME=VALUE ...] [--partition P]
    dp kafka get TOPIC [--from earliest|latest|OFFSET|TIME] [--partition P] [--group G [--commit]]
                       [--max N] [--format auto|json|avro|protobuf|raw] [--follow] [--timeout S]
    dp kafka lag GROUP [--topic T]

Where the broker is: ``--bootstrap``, else ``DP_KAFKA_BOOTSTRAP``, else the Airflow Kafka
connection ``kafka_default`` (``AIRFLOW_CONN_KAFKA_DEFAULT``: its ``extra`` holds every client
setting, so a TLS/SASL broker works as the DAGs reach it), from the environment or from the
stack's ``stack.env``. Client settings are never printed (they may hold SASL passwords).

``get`` prints one JSON object per record (topic, partition, offset, timestamp, key, headers,
value) with the value decoded by the topic's declared format (include/platform/topics.py):
JSON, Protobuf (``metric.proto``) or Avro (the writer schema named by the ``avro.schema``
header, spark_apps/streaming/websocket/schemas/). Without ``--group`` it reads with
``assign()`` and commits nothing; with ``--group`` it joins that consumer group
(``subscribe()``) and starts at the group's committed offsets (or ``--from``); ``--commit``
commits each printed record (synchronously, so a record counts as read only once printed).
``--from TIME`` takes ISO-8601 (``2026-01-02T03:04:05Z``) or ``@<epoch ms>``.

Errors are one line on stderr and exit 1: an unknown topic or group, an unreachable broker,
an offset outside what the partition holds.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import sys
import time
import uuid
from datetime import datetime, timezone

CONNECT_TIMEOUT_S = 8.0
FROM_HELP = "earliest, latest, an offset (every partition, or --partition), an ISO-8601 time or @<epoch ms>"


class KafkaCliError(RuntimeError):
    """One line for the user: what went wrong and what to do."""


# --------------------------------------------------------------------------- connection


def _quiet_logger() -> logging.Logger:
    # librdkafka reports every failed connect attempt on stderr; the CLI says it once, itself.
    logger = logging.getLogger("dp.kafka.client")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def _connection_extra(conn_id: str) -> dict:
    """The ``extra`` of the Airflow connection ``conn_id`` from ``AIRFLOW_CONN_*`` (environment
    first, then stack.env): JSON or URI form, as Airflow accepts them."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(name)
    if not value:
        from include.platform import stack

        value = stack.read_env_file(stack.StackConfig()).get(name)
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        extra = json.loads(value).get("extra") or {}
        return json.loads(extra) if isinstance(extra, str) else extra
    from airflow.models.connection import Connection  # a URI: let Airflow parse it

    return Connection(conn_id=conn_id, uri=value).extra_dejson


def client_config(bootstrap: str | None = None, conn_id: str = "kafka_default") -> dict:
    """librdkafka settings: the connection's extra, with ``bootstrap.servers`` from
    ``bootstrap`` or ``DP_KAFKA_BOOTSTRAP`` when given."""
    config = dict(_connection_extra(conn_id)) if not bootstrap else {}
    bootstrap = bootstrap or os.environ.get("DP_KAFKA_BOOTSTRAP") or config.get("bootstrap.servers")
    if not bootstrap:
        from include.platform import stack

        bootstrap = stack.read_env_file(stack.StackConfig()).get("DP_KAFKA_BOOTSTRAP")
    if not bootstrap:
        raise KafkaCliError("no Kafka broker configured: start the stack (`dp up`), or pass --bootstrap HOST:PORT")
    config["bootstrap.servers"] = bootstrap
    return config


class Client:
    """Admin, producer and consumer handles on one configuration, made when first needed."""

    def __init__(self, config: dict):
        self.config = config
        self.bootstrap = config["bootstrap.servers"]
        self._admin = None

    def _conf(self, **more) -> dict:
        return {**self.config, "logger": _quiet_logger(), **more}

    @property
    def admin(self):
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self._conf())
        return self._admin

    def unreachable(self, exc: Exception | str) -> KafkaCliError:
        return KafkaCliError(f"cannot reach the Kafka broker at {self.bootstrap} ({exc}): "
                             "is it running (`dp status`, `dp up`)? or pass --bootstrap HOST:PORT")

    def metadata(self, topic: str | None = None):
        from confluent_kafka import KafkaException

        try:
            metadata = self.admin.list_topics(topic=topic, timeout=CONNECT_TIMEOUT_S)
        except KafkaException as exc:
            raise self.unreachable(exc.args[0].str() if exc.args else exc) from None
        if not metadata.brokers:
            raise self.unreachable("no broker answered")
        return metadata

    def topic(self, name: str):
        """The topic's metadata, or KafkaCliError when the broker does not hold it."""
        meta = self.metadata(name).topics.get(name)
        if meta is None or meta.error is not None:
            raise KafkaCliError(f"topic {name!r} does not exist on {self.bootstrap} "
                                "(`dp kafka topics list`; the platform's topics come from platform_bootstrap)")
        return meta

    def partitions(self, name: str) -> list[int]:
        return sorted(self.topic(name).partitions)

    def watermarks(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """(earliest retained offset, end offset) per partition."""
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        def ask(spec):
            futures = self.admin.list_offsets({TopicPartition(topic, p): spec for p in partitions},
                                              request_timeout=CONNECT_TIMEOUT_S)
            return {tp.partition: f.result(CONNECT_TIMEOUT_S).offset for tp, f in futures.items()}

        try:
            low, high = ask(OffsetSpec.earliest()), ask(OffsetSpec.latest())
        except KafkaException as exc:
            raise self.unreachable(exc.args[0].str() if exc.args else exc) from None
        return {p: (low[p], high[p]) for p in partitions}


# --------------------------------------------------------------------------- decoding


def topic_format(topic: str) -> str:
    from include.platform.topics import TOPICS

    return next((t.value_format for t in TOPICS if t.name == topic), "raw")


def _protobuf(value: bytes) -> dict:
    from google.protobuf.json_format import MessageToDict

    try:
        from spark_apps.streaming.metrics import metric_pb2
    except ImportError:
        raise KafkaCliError("the Protobuf module is not generated: run `dp build` first") from None
    message = metric_pb2.Metric()
    message.ParseFromString(value)
    return MessageToDict(message, preserving_proto_field_name=True)


def _avro(value: bytes, headers: dict[str, bytes]) -> dict:
    import fastavro

    from spark_apps.streaming.websocket import schema

    writer = (headers.get(schema.HEADER) or schema.CURRENT.encode()).decode()
    parsed_writer = fastavro.parse_schema(schema.schema(writer))
    parsed_reader = fastavro.parse_schema(schema.schema(schema.CURRENT))
    return fastavro.schemaless_reader(io.BytesIO(value), parsed_writer, parsed_reader)


def decode_value(value: bytes | None, fmt: str, headers: dict[str, bytes]):
    """The value as JSON-printable data; a value that does not decode prints as
    ``{"undecodable": <reason>, "base64": ...}`` (the CLI never stops on a bad record)."""
    if value is None:
        return None
    try:
        if fmt == "json":
            return json.loads(value)
        if fmt == "protobuf":
            return _protobuf(value)
        if fmt == "avro":
            return _avro(value, headers)
    except KafkaCliError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is reported in the output
        return {"undecodable": f"{fmt}: {type(exc).__name__}: {exc}"[:300],
                "base64": base64.b64encode(value).decode()}
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def _text(data: bytes | None):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def record_line(message, fmt: str) -> str:
    headers = {k: v for k, v in (message.headers() or [])}
    ts_type, ts = message.timestamp()
    return json.dumps({
        "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
        "timestamp": datetime.fromtimestamp(ts / 1000, timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z") if ts_type and ts >= 0 else None,
        "key": _text(message.key()),
        "headers": {k: _text(v) for k, v in headers.items()},
        "value": decode_value(message.value(), fmt, headers),
    }, default=_json_default, ensure_ascii=False)


# --------------------------------------------------------------------------- commands


def topics_list(client: Client, args) -> int:
    for name, meta in sorted(client.metadata().topics.items()):
        if name.startswith("__"):
            continue  # the broker's own (consumer offsets, transactions)
        print(f"{name}\t{len(meta.partitions)} partitions")
    return 0


def topics_create(client: Client, args) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    config = dict(_key_value(item, "--config") for item in args.config)
    if args.retention_ms is not None:
        config["retention.ms"] = str(args.retention_ms)
    client.metadata()  # a clear error when the broker is unreachable
    future = client.admin.create_topics(
        [NewTopic(args.name, num_partitions=args.partitions, replication_factor=args.replication_factor,
                  config=config)], operation_timeout=CONNECT_TIMEOUT_S)[args.name]
    try:
        future.result(CONNECT_TIMEOUT_S * 2)
    except KafkaException as exc:
        error = exc.args[0]
        if error.name() == "TOPIC_ALREADY_EXISTS":
            raise KafkaCliError(f"topic {args.name!r} already exists (`dp kafka topics describe {args.name}`)") from None
        raise KafkaCliError(f"creating topic {args.name!r} failed: {error.str()}") from None
    print(f"created {args.name} ({args.partitions} partitions)")
    return 0


def topics_describe(client: Client, args) -> int:
    from confluent_kafka.admin import ConfigResource

    meta = client.topic(args.name)
    marks = client.watermarks(args.name, sorted(meta.partitions))
    resource = ConfigResource(ConfigResource.Type.TOPIC, args.name)
    configs = client.admin.describe_configs([resource])[resource].result(CONNECT_TIMEOUT_S)
    print(f"topic {args.name}: {len(meta.partitions)} partitions, format {topic_format(args.name)}")
    for key in ("retention.ms", "retention.bytes", "cleanup.policy", "min.insync.replicas"):
        if key in configs:
            print(f"  {key} = {configs[key].value}")
    print("  partition\tleader\treplicas\tisr\tearliest\tend\trecords")
    for pid in sorted(meta.partitions):
        p = meta.partitions[pid]
        low, high = marks[pid]
        print(f"  {pid}\t{p.leader}\t{p.replicas}\t{p.isrs}\t{low}\t{high}\t{high - low}")
    return 0


def _key_value(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise KafkaCliError(f"{option} takes NAME=VALUE, not {item!r}")
    return key, value


def _put_records(args) -> list[tuple[bytes | None, bytes]]:
    if args.value is not None:
        return [(args.key.encode() if args.key is not None else None, args.value.encode())]
    records = []
    for line in sys.stdin:
        line = line.rstrip("\r\n")
        if not line:
            continue
        key = args.key
        if args.key_separator:
            key, sep, line = line.partition(args.key_separator)
            if not sep:
                raise KafkaCliError(f"stdin line without the key separator {args.key_separator!r}: {line[:80]!r}")
        records.append((key.encode() if key is not None else None, line.encode()))
    return records


def _encode_for(topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> bytes:
    """Values of an Avro topic are given as JSON and written with the current schema (and its header)."""
    if topic_format(topic) != "avro":
        return value
    import fastavro

    from spark_apps.streaming.websocket import schema

    try:
        record = json.loads(value)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(schema.schema()), record)
    except Exception as exc:  # noqa: BLE001
        raise KafkaCliError(f"{topic} holds Avro ({schema.CURRENT}): give the value as a JSON object of its "
                            f"fields ({type(exc).__name__}: {exc})") from None
    headers.append((schema.HEADER, schema.CURRENT.encode()))
    return out.getvalue()


def put(client: Client, args) -> int:
    from confluent_kafka import Producer

    partitions = client.partitions(args.topic)
    if args.partition is not None and args.partition not in partitions:
        raise KafkaCliError(f"topic {args.topic!r} has partitions {partitions[0]}..{partitions[-1]}, not {args.partition}")
    headers = [(k, v.encode()) for k, v in (_key_value(h, "--header") for h in args.header)]
    records = _put_records(args)
    producer = Producer(client._conf(**{"enable.idempotence": True, "acks": "all"}))
    errors: list[str] = []
    delivered: list[tuple[int, int]] = []

    def report(err, msg):
        if err:
            errors.append(err.str())
        else:
            delivered.append((msg.partition(), msg.offset()))

    for key, value in records:
        record_headers = list(headers)
        value = _encode_for(args.topic, value, record_headers)
        kwargs = {"partition": args.partition} if args.partition is not None else {}
        producer.produce(args.topic, key=key, value=value, headers=record_headers, on_delivery=report, **kwargs)
        producer.poll(0)
    left = producer.flush(30)
    if errors or left:
        raise KafkaCliError(f"{len(errors) + left} of {len(records)} records not delivered to {args.topic}: "
                            f"{errors[0] if errors else 'timed out'}")
    for partition, offset in delivered:
        print(f"{args.topic}\tpartition {partition}\toffset {offset}")
    return 0


def _parse_from(value: str):
    """``earliest`` / ``latest`` / ("offset", N) / ("time", epoch ms)."""
    if value in ("earliest", "latest"):
        return value
    if value.lstrip("-").isdigit():
        offset = int(value)
        if offset < 0:
            raise KafkaCliError(f"--from {value}: an offset is 0 or more")
        return ("offset", offset)
    if value.startswith("@") and value[1:].isdigit():
        return ("time", int(value[1:]))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise KafkaCliError(f"--from {value!r}: use {FROM_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ("time", int(moment.timestamp() * 1000))


def start_positions(client: Client, topic: str, partitions: list[int], start) -> dict[int, int]:
    """Offset to start each partition at for ``start`` (:func:`_parse_from`); a bad offset is an error."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

    if start == "earliest":
        return {p: OFFSET_BEGINNING for p in partitions}
    if start == "latest":
        return {p: OFFSET_END for p in partitions}
    kind, number = start
    marks = client.watermarks(topic, partitions)
    if kind == "offset":
        for p in partitions:
            low, high = marks[p]
            if not low <= number <= high:
                raise KafkaCliError(f"offset {number} is out of range for {topic} partition {p}: it holds offsets "
                                    f"{low}..{high - 1} ({high} is the next to be written)" if high > low else
                                    f"offset {number} is out of range for {topic} partition {p}: the partition is "
                                    f"empty (next offset {high})")
        return {p: number for p in partitions}
    from confluent_kafka import Consumer

    consumer = Consumer(client._conf(**{"group.id": f"dp-kafka-cli-{uuid.uuid4().hex}", "enable.auto.commit": False}))
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, p, number) for p in partitions],
                                           timeout=CONNECT_TIMEOUT_S)
    finally:
        consumer.close()
    # No record at or after the time: the partition's end (nothing to read there yet).
    return {tp.partition: (tp.offset if tp.offset >= 0 else marks[tp.partition][1]) for tp in found}


def get(client: Client, args) -> int:
    from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, TopicPartition

    start = _parse_from(args.start) if args.start else None  # a typo fails before any connection
    partitions = client.partitions(args.topic)
    if args.partition is not None:
        if args.partition not in partitions:
            raise KafkaCliError(f"topic {args.topic!r} has partitions {partitions[0]}..{partitions[-1]}, "
                                f"not {args.partition}")
        partitions = [args.partition]
    if args.commit and not args.group:
        raise KafkaCliError("--commit needs --group NAME (offsets are committed for a consumer group)")
    positions = start_positions(client, args.topic, partitions, start) if start else None
    fmt = topic_format(args.topic) if args.format == "auto" else args.format
    conf = {
        "group.id": args.group or f"dp-kafka-cli-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # Where a group without a committed offset starts (and a reader without --from).
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(client._conf(**conf))
    assigned: set[int] = set()
    at_end: set[int] = set()

    def on_assign(c, tps):
        for tp in tps:
            if positions is not None:
                tp.offset = positions[tp.partition]
            assigned.add(tp.partition)
        c.assign(tps)

    def on_revoke(c, tps):
        for tp in tps:
            assigned.discard(tp.partition)
            at_end.discard(tp.partition)

    if args.group and args.partition is None:
        # A member of the named group: the group coordinator assigns the partitions.
        consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    else:
        start_at = positions or {p: OFFSET_STORED for p in partitions}
        consumer.assign([TopicPartition(args.topic, p, start_at[p]) for p in partitions])
        assigned.update(partitions)
    printed = 0
    idle_since = time.monotonic()
    try:
        while args.max is None or printed < args.max:
            message = consumer.poll(0.5)
            if message is None:
                if not args.follow and time.monotonic() - idle_since > args.timeout:
                    break
                continue
            idle_since = time.monotonic()
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    if not args.follow and assigned and assigned <= at_end:
                        break
                    continue
                if error.code() in (KafkaError.OFFSET_OUT_OF_RANGE,):
                    raise KafkaCliError(f"{args.topic} partition {message.partition()}: {error.str()}")
                if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                    raise client.unreachable(error.str())
                raise KafkaCliError(f"reading {args.topic}: {error.str()}")
            at_end.discard(message.partition())
            print(record_line(message, fmt), flush=True)
            printed += 1
            if args.commit:
                consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    print(f"{printed} record(s)", file=sys.stderr)
    return 0


def lag(client: Client, args) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

    client.metadata()
    try:
        result = client.admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(args.group)], request_timeout=CONNECT_TIMEOUT_S)[args.group]
        committed = [tp for tp in result.result(CONNECT_TIMEOUT_S).topic_partitions or [] if tp.offset >= 0]
    except KafkaException as exc:
        raise KafkaCliError(f"reading the offsets of group {args.group!r} failed: {exc.args[0].str()}") from None
    if args.topic:
        committed = [tp for tp in committed if tp.topic == args.topic]
    if not committed:
        raise KafkaCliError(f"consumer group {args.group!r} has no committed offsets"
                            + (f" on {args.topic}" if args.topic else "")
                            + " (`dp kafka get TOPIC --group NAME --commit` commits some)")
    total = 0
    print("topic\tpartition\tcommitted\tend\tlag")
    by_topic: dict[str, list[TopicPartition]] = {}
    for tp in committed:
        by_topic.setdefault(tp.topic, []).append(tp)
    for topic, tps in sorted(by_topic.items()):
        marks = client.watermarks(topic, sorted(tp.partition for tp in tps))
        for tp in sorted(tps, key=lambda t: t.partition):
            behind = max(0, marks[tp.partition][1] - tp.offset)
            total += behind
            print(f"{topic}\t{tp.partition}\t{tp.offset}\t{marks[tp.partition][1]}\t{behind}")
    print(f"total lag {total}")
    return 0


# --------------------------------------------------------------------------- argparse


def add_parser(sub) -> None:
    """Register ``kafka`` on the ``dp`` subparsers (include/platform/cli.py)."""
    kafka = sub.add_parser("kafka", help="Kafka topics, put, get, lag (confluent-kafka)",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kafka.add_argument("--bootstrap", help="HOST:PORT (default: DP_KAFKA_BOOTSTRAP or the kafka_default connection)")
    kafka.add_argument("--conn-id", default="kafka_default", help="Airflow Kafka connection to read the settings from")
    commands = kafka.add_subparsers(dest="kafka_cmd", required=True)

    topics = commands.add_parser("topics", help="list, create, describe topics").add_subparsers(
        dest="topics_cmd", required=True)
    topics.add_parser("list", help="every topic and its partitions").set_defaults(kafka_func=topics_list)
    create = topics.add_parser("create", help="create a topic")
    create.add_argument("name")
    create.add_argument("--partitions", type=int, default=1)
    create.add_argument("--replication-factor", type=int, default=1)
    create.add_argument("--retention-ms", type=int)
    create.add_argument("--config", action="append", default=[], help="topic setting KEY=VALUE (repeatable)")
    create.set_defaults(kafka_func=topics_create)
    describe = topics.add_parser("describe", help="partitions, offsets, retention")
    describe.add_argument("name")
    describe.set_defaults(kafka_func=topics_describe)

    put_p = commands.add_parser("put", help="produce records (the value argument, or stdin lines)")
    put_p.add_argument("topic")
    put_p.add_argument("--key", help="the key of every record (stdin: see --key-separator)")
    put_p.add_argument("--value", help="one record's value; without it every stdin line is one")
    put_p.add_argument("--key-separator", help="stdin lines are KEY<SEP>VALUE")
    put_p.add_argument("-H", "--header", action="append", default=[], help="NAME=VALUE (repeatable)")
    put_p.add_argument("--partition", type=int, help="this partition (default: by key, or spread)")
    put_p.set_defaults(kafka_func=put)

    get_p = commands.add_parser("get", help="consume and print decoded records")
    get_p.add_argument("topic")
    get_p.add_argument("--from", dest="start", help=FROM_HELP + " (default: the group's committed offsets, else earliest)")
    get_p.add_argument("--partition", type=int)
    get_p.add_argument("--group", help="read as this consumer group")
    get_p.add_argument("--commit", action="store_true", help="commit each printed record for --group")
    get_p.add_argument("--max", type=int, help="stop after this many records")
    get_p.add_argument("--format", choices=("auto", "json", "avro", "protobuf", "raw"), default="auto",
                       help="value decoding (auto: the topic's declared format)")
    get_p.add_argument("--follow", action="store_true", help="wait for new records instead of stopping at the end")
    get_p.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds without a record")
    get_p.set_defaults(kafka_func=get)

    lag_p = commands.add_parser("lag", help="a consumer group's committed offsets against the end offsets")
    lag_p.add_argument("group")
    lag_p.add_argument("--topic")
    lag_p.set_defaults(kafka_func=lag)

    kafka.set_defaults(func=run)


def run(args) -> int:
    from include.platform.stack import StackError

    try:
        client = Client(client_config(args.bootstrap, args.conn_id))
        return args.kafka_func(client, args)
    except KafkaCliError as exc:
        raise StackError(str(exc)) from None
    except BrokenPipeError:  # `dp kafka get ... | head`
        return 0
