"""Publish realistic server-metric events to Kafka, for demos, tests and load tests.

    python -m include.producers.metrics --bootstrap 127.0.0.1:9092 --topic metric-message \\
        --bursts 10 --interval 5            # one snapshot of every host and metric every 5 s
    python -m include.producers.metrics --bootstrap 127.0.0.1:9092 --topic metric-message \\
        --rate 200 --duration 30            # load test: 200 events/s for 30 s
    ... --invalid-share 0.05                # 5% deliberately broken events for the dead-letter path

Events look like the upstream agents' JSON (timestamp in epoch milliseconds, as a string)::

    {"host": "server1", "metricName": "memory_usage_gb", "region": "eu-west-1",
     "timestamp": "1718876852088", "value": 7}

Records are keyed by host, so one host's events stay ordered within a partition. Every
record has a delivery report; :func:`produce_events` raises :class:`DeliveryFailed` when
any record was not acknowledged, after counting all of them. The producer never creates
its topic (the brokers run with ``auto.create.topics.enable=false``; ``platform_bootstrap``
creates the topics of ``include/platform/topics.py``): a missing topic is
:class:`TopicMissing` at once, not a delivery timeout minutes later. Airflow tasks call
:func:`run_bursts` / :func:`run_rate` directly (plain functions, no CLI parsing).
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from spark_apps.streaming.metrics.names import METRIC_NAMES  # noqa: E402  (one list for producer and jobs)

REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-1", "us-west-2")
REQUIRED_FIELDS = ("host", "metricName", "region", "timestamp", "value")

# Plausible value ranges per metric (low, high, decimals); memory is whole GB like the seed.
VALUE_RANGES = {
    "memory_usage_gb": (1, 64, 0),
    "disk_io_rate_mbps": (0.0, 500.0, 2),
    "network_throughput_mbps": (0.0, 1000.0, 2),
    "response_time_ms": (5.0, 2000.0, 1),
    "error_rate_percentage": (0.0, 10.0, 3),
}

# Ways an event can be broken; the pipeline must route each to the dead-letter topic.
INVALID_KINDS = ("invalid_json", "missing_field", "wrong_type", "unknown_metric_name")

DEFAULT_INTERVAL_S = 5.0
FLUSH_TIMEOUT_S = 30.0


class DeliveryFailed(RuntimeError):
    """Some records were not acknowledged by the broker."""

    def __init__(self, report: "ProduceReport"):
        super().__init__(
            f"{report.failed} of {report.produced} records not delivered to {report.topic}; "
            f"first error: {report.first_error}"
        )
        self.report = report


class TopicMissing(RuntimeError):
    """The topic does not exist on the broker."""


@dataclass
class ProduceReport:
    topic: str
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    valid: int = 0
    invalid_by_kind: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def invalid(self) -> int:
        return sum(self.invalid_by_kind.values())

    def add(self, other: "ProduceReport") -> None:
        self.produced += other.produced
        self.delivered += other.delivered
        self.failed += other.failed
        self.valid += other.valid
        for kind, count in other.invalid_by_kind.items():
            self.invalid_by_kind[kind] = self.invalid_by_kind.get(kind, 0) + count
        self.first_error = self.first_error or other.first_error

    def as_dict(self) -> dict:
        return {
            "topic": self.topic, "produced": self.produced, "delivered": self.delivered,
            "failed": self.failed, "valid": self.valid, "invalid": self.invalid,
            "invalid_by_kind": dict(sorted(self.invalid_by_kind.items())),
        }


@dataclass(frozen=True)
class Event:
    """One record to publish: ``invalid_kind`` is None for a valid event."""
    key: bytes
    value: bytes
    invalid_kind: str | None = None


def host_names(hosts: int) -> list[str]:
    return [f"server{i}" for i in range(1, hosts + 1)]


def host_region(host: str) -> str:
    # A server lives in one region; stable across runs so per-region views make sense.
    return REGIONS[int(host.removeprefix("server")) % len(REGIONS)]


def metric_value(metric_name: str, rng: random.Random) -> float | int:
    low, high, decimals = VALUE_RANGES[metric_name]
    if decimals == 0:
        return rng.randint(low, high)
    return round(rng.uniform(low, high), decimals)


def valid_metric(host: str, metric_name: str, timestamp_ms: int, rng: random.Random) -> dict:
    return {
        "host": host,
        "metricName": metric_name,
        "region": host_region(host),
        "timestamp": str(timestamp_ms),
        "value": metric_value(metric_name, rng),
    }


def broken_payload(kind: str, metric: dict, rng: random.Random) -> bytes:
    """The bytes of ``metric`` broken in the way ``kind`` names."""
    if kind == "invalid_json":
        text = json.dumps(metric)
        return text[: rng.randint(1, len(text) - 1)].encode()  # truncated mid-document
    broken = dict(metric)
    if kind == "missing_field":
        del broken[rng.choice(REQUIRED_FIELDS)]
    elif kind == "wrong_type":
        if rng.random() < 0.5:
            broken["value"] = "abc"
        else:
            broken["timestamp"] = "yesterday"
    elif kind == "unknown_metric_name":
        broken["metricName"] = "cpu_temperature_celsius"
    else:
        raise ValueError(f"unknown invalid kind {kind!r}; expected one of {INVALID_KINDS}")
    return json.dumps(broken).encode()


def generate_events(
    count: int,
    rng: random.Random,
    hosts: int = 10,
    timestamp_ms: int | None = None,
    invalid_share: float = 0.0,
) -> list[Event]:
    """``count`` events cycling through every (host, metric) pair, stamped ``timestamp_ms``.

    Each event is broken with probability ``invalid_share`` (kinds drawn uniformly).
    Cycling the pairs makes one burst of ``hosts * 5`` events a full snapshot.
    """
    if not 0.0 <= invalid_share <= 1.0:
        raise ValueError("invalid_share must be between 0 and 1")
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    names = host_names(hosts)
    events = []
    for i in range(count):
        host = names[(i // len(METRIC_NAMES)) % len(names)]
        metric = valid_metric(host, METRIC_NAMES[i % len(METRIC_NAMES)], stamp, rng)
        if rng.random() < invalid_share:
            kind = rng.choice(INVALID_KINDS)
            events.append(Event(host.encode(), broken_payload(kind, metric, rng), kind))
        else:
            events.append(Event(host.encode(), json.dumps(metric).encode()))
    return events


def make_producer(bootstrap: str, extra_config: dict | None = None):
    from confluent_kafka import Producer

    # Idempotent producer: librdkafka's retries cannot duplicate or reorder records.
    config = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        **(extra_config or {}),
    }
    return Producer(config)


def require_topic(producer, topic: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`TopicMissing` when the broker says ``topic`` does not exist. An unreachable
    broker is left to the delivery reports (they count what failed)."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        metadata = producer.list_topics(topic, timeout=timeout_s)
    except KafkaException:
        return
    found = metadata.topics.get(topic)
    if found is None or (found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise TopicMissing(
            f"topic {topic!r} does not exist on the broker: producers never create topics; create it with "
            "the platform_bootstrap DAG (topics are declared in include/platform/topics.py)")


def produce_events(producer, topic: str, events: Iterable[Event], raise_on_failure: bool = True) -> ProduceReport:
    """Publish ``events``, wait for every delivery report and count the outcomes."""
    report = ProduceReport(topic=topic)

    def on_delivery(err, _message):
        if err is None:
            report.delivered += 1
        else:
            report.failed += 1
            report.first_error = report.first_error or str(err)

    for event in events:
        while True:
            try:
                producer.produce(topic, key=event.key, value=event.value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full under load: serve callbacks, retry
        report.produced += 1
        if event.invalid_kind is None:
            report.valid += 1
        else:
            report.invalid_by_kind[event.invalid_kind] = report.invalid_by_kind.get(event.invalid_kind, 0) + 1
        producer.poll(0)
    not_flushed = producer.flush(FLUSH_TIMEOUT_S)
    if not_flushed:
        # Records still queued after the timeout have no report yet: they count as failed.
        report.failed += not_flushed
        report.first_error = report.first_error or f"{not_flushed} records not acknowledged within {FLUSH_TIMEOUT_S}s"
    if raise_on_failure and report.failed:
        raise DeliveryFailed(report)
    return report


def run_bursts(
    bootstrap: str,
    topic: str,
    bursts: int | None,
    interval_s: float = DEFAULT_INTERVAL_S,
    hosts: int = 10,
    invalid_share: float = 0.0,
    seed: int | None = None,
    producer_config: dict | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProduceReport:
    """``bursts`` snapshots (every host x every metric, one timestamp each), ``interval_s`` apart;
    ``bursts`` None: until the process is stopped (how the streaming DAG runs it, beside the jobs)."""
    rng = random.Random(seed)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    total = ProduceReport(topic=topic)
    for burst in itertools.count() if bursts is None else range(bursts):
        if burst:
            sleep(interval_s)
        events = generate_events(hosts * len(METRIC_NAMES), rng, hosts=hosts, invalid_share=invalid_share)
        total.add(produce_events(producer, topic, events))
    return total


def run_rate(
    bootstrap: str,
    topic: str,
    rate: float,
    duration_s: float,
    hosts: int = 10,
    invalid_share: float = 0.0,
    seed: int | None = None,
    producer_config: dict | None = None,
) -> ProduceReport:
    """About ``rate`` events per second for ``duration_s`` seconds, paced in 1-second ticks.

    Delivery reports are checked once per tick, so a broker failure stops the load
    test within a second or so of the flush timeout instead of at the end.
    """
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    rng = random.Random(seed)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    total = ProduceReport(topic=topic)
    ticks = max(1, int(round(duration_s)))
    per_tick = max(1, int(round(rate * duration_s / ticks)))
    start = time.monotonic()
    for tick in range(ticks):
        events = generate_events(per_tick, rng, hosts=hosts, invalid_share=invalid_share)
        total.add(produce_events(producer, topic, events))
        behind = start + tick + 1 - time.monotonic()
        if behind > 0 and tick + 1 < ticks:
            time.sleep(behind)
    return total


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default="metric-message")
    parser.add_argument("--hosts", type=int, default=10, help="number of servers (server1..N)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="events per second (load test; needs --duration)")
    mode.add_argument("--bursts", type=int, default=1, help="number of snapshots (default 1)")
    parser.add_argument("--duration", type=float, help="seconds to run at --rate")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="seconds between bursts")
    parser.add_argument("--invalid-share", type=float, default=0.0, help="share of deliberately broken events (0..1)")
    parser.add_argument("--seed", type=int, help="random seed, for reproducible values")
    args = parser.parse_args(argv)
    if args.rate is not None and args.duration is None:
        parser.error("--rate needs --duration")
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        if args.rate is not None:
            report = run_rate(args.bootstrap, args.topic, args.rate, args.duration, args.hosts,
                              args.invalid_share, args.seed)
        else:
            report = run_bursts(args.bootstrap, args.topic, args.bursts, args.interval, args.hosts,
                                args.invalid_share, args.seed)
    except DeliveryFailed as failure:
        print(json.dumps(failure.report.as_dict()))
        raise
    print(json.dumps(report.as_dict()))
    return report.as_dict()


if __name__ == "__main__":
    try:
        main()
    except (DeliveryFailed, TopicMissing) as error:
        print(error, file=sys.stderr)
        sys.exit(1)
