"""A real Apache Kafka broker for the platform tools' tests (`dp kafka`): the embedded stack's
broker on free ports, one per test session (tests/spark_apps/streaming/conftest.py has the
helpers; its fixture lives there, for the streaming tests)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    from tests.spark_apps.streaming.conftest import _start_broker, _stop_broker

    broker = _start_broker(tmp_path_factory.mktemp("kafka-home"))
    try:
        yield broker
    finally:
        _stop_broker(broker)
