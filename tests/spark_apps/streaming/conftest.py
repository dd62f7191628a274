"""A real Apache Kafka broker for the streaming tests.

``kafka_broker`` (tests/conftest.py, shared with the platform tools' tests) starts the embedded
stack's broker (:mod:`include.platform.stack.kafka`) with these helpers, on free ports with its own
log directory for the whole test session, and stops it at the end. Tests create their own
uniquely named topics, so they do not see each other's data.
``private_kafka_broker`` is a broker of one test's own, for the fault tests that kill it
(``stop(kill=True)``, ``start()``, ``restart()``: the same log directory).
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass

import pytest

from include.platform.stack import free_port

ADMIN_TIMEOUT_S = 15.0


@dataclass
class KafkaBroker:
    bootstrap: str
    cfg: object  # the private StackConfig the broker runs under

    def pid(self) -> int | None:
        from include.platform import stack

        return stack.running_pid(self.cfg, "kafka")

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (controlled shutdown) or SIGKILL (a crash)."""
        from include.platform import stack

        pid = self.pid()
        assert pid, "broker not running"
        if kill:
            os.killpg(pid, signal.SIGKILL)
        assert stack.stop_service(self.cfg, "kafka")

    def start(self) -> None:
        from include.platform import stack
        from include.platform.stack import kafka

        stack.start_service(self.cfg, kafka.service(self.cfg), dict(os.environ))

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topic(self, name: str | None = None, partitions: int = 2) -> str:
        """Create a topic (unique name unless given) and wait until metadata shows it."""
        from confluent_kafka.admin import NewTopic

        name = name or f"t_{uuid.uuid4().hex[:10]}"
        admin = self.admin()
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            operation_timeout=ADMIN_TIMEOUT_S,
        )
        futures[name].result(timeout=ADMIN_TIMEOUT_S)
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while time.monotonic() < deadline:
            topic = admin.list_topics(timeout=5).topics.get(name)
            if topic is not None and topic.error is None and len(topic.partitions) == partitions:
                return name
            time.sleep(0.1)
        raise TimeoutError(f"topic {name} not visible in metadata after creation")

    def delete_topic(self, name: str) -> None:
        admin = self.admin()
        admin.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)[name].result(
            timeout=ADMIN_TIMEOUT_S
        )
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while time.monotonic() < deadline:
            if name not in admin.list_topics(timeout=5).topics:
                return
            time.sleep(0.1)
        raise TimeoutError(f"topic {name} still in metadata after deletion")

    def delete_records(self, topic: str, before: dict[int, int]) -> None:
        """Delete every record below ``before[partition]`` (what retention does to old segments)."""
        from confluent_kafka import TopicPartition

        admin = self.admin()  # kept alive until the futures resolve
        futures = admin.delete_records([TopicPartition(topic, p, o) for p, o in before.items()],
                                       operation_timeout=ADMIN_TIMEOUT_S)
        for future in futures.values():
            future.result(timeout=ADMIN_TIMEOUT_S)

    def produce(self, topic: str, records: list[tuple[bytes, bytes, int]]) -> None:
        """Produce (key, value, partition) records and fail unless all are acknowledged."""
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all"}
        )
        errors = []
        for key, value, partition in records:
            producer.produce(
                topic,
                key=key,
                value=value,
                partition=partition,
                on_delivery=lambda err, _msg: errors.append(err) if err else None,
            )
        remaining = producer.flush(ADMIN_TIMEOUT_S)
        assert remaining == 0 and not errors, f"produce failed: {remaining} pending, {errors}"

    def consume_all(self, topic: str, partitions: int) -> list:
        """Every record of the topic, read with assign() from offset 0 to the partition end."""
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            records, at_end = [], set()
            deadline = time.monotonic() + ADMIN_TIMEOUT_S
            while len(at_end) < partitions and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                if message.error():
                    assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                    at_end.add(message.partition())
                    continue
                records.append(message)
            assert len(at_end) == partitions, "did not reach the end of every partition"
            return records
        finally:
            consumer.close()


def _start_broker(home) -> KafkaBroker:
    from include.platform import stack
    from include.platform.stack import kafka

    cfg = stack.StackConfig(home=home, kafka_port=free_port(), kafka_controller_port=free_port(),
                            moto_port=free_port())
    stack.start_service(cfg, kafka.service(cfg), dict(os.environ))
    return KafkaBroker(bootstrap=f"127.0.0.1:{cfg.kafka_port}", cfg=cfg)


def _stop_broker(broker: KafkaBroker) -> None:
    from include.platform import stack

    stack.stop_service(broker.cfg, "kafka")


@pytest.fixture
def private_kafka_broker(tmp_path_factory):
    """A broker of its own for one test, to kill and restart without disturbing the others."""
    broker = _start_broker(tmp_path_factory.mktemp("private-kafka-home"))
    try:
        yield broker
    finally:
        _stop_broker(broker)
