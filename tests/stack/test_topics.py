"""The platform's topic declarations applied to the real broker: created, grown, retention set, idempotent."""
from __future__ import annotations

import uuid

import pytest

from include.platform.topics import TOPICS, Topic, ensure_topics

pytestmark = [pytest.mark.stack]


@pytest.fixture
def admin(embedded_stack):
    from confluent_kafka.admin import AdminClient

    _, env = embedded_stack
    return AdminClient({"bootstrap.servers": env["DP_KAFKA_BOOTSTRAP"]})


def _retention(admin, name: str) -> str:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    return admin.describe_configs([resource])[resource].result(30)["retention.ms"].value


def test_declared_topics_have_unique_names_and_sane_settings():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert all(t.partitions >= 1 and (t.retention_ms == -1 or t.retention_ms >= 3600_000) for t in TOPICS)


def test_ensure_topics_creates_grows_and_sets_retention_idempotently(admin):
    name = f"t_{uuid.uuid4().hex[:8]}"
    declared = (Topic(name, 2, 3_600_000, "test"),)
    assert ensure_topics(admin, declared) == [f"created {name}"]
    assert len(admin.list_topics(timeout=10).topics[name].partitions) == 2
    assert _retention(admin, name) == "3600000"
    assert ensure_topics(admin, declared) == []  # nothing to do the second time

    changed = (Topic(name, 3, 7_200_000, "test"),)
    assert ensure_topics(admin, changed) == [f"{name}: partitions raised"]
    assert len(admin.list_topics(timeout=10).topics[name].partitions) == 3
    assert _retention(admin, name) == "7200000"
