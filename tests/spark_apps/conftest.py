"""A real Cassandra node for the Spark apps' tests that write to it (the weather pipeline, the
air-quality readings): the embedded stack's node (tests/spark_apps/streaming/weather/pipeline.py
:class:`CassandraNode`) on free ports under a private home, one for the test session (a start
costs 25-45 s). Tests create their own keyspaces, so they do not see each other's rows; a test
may stop and start it (the same data comes back)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cassandra_node(tmp_path_factory):
    from include.platform import stack
    from tests.spark_apps.streaming.weather.pipeline import start_node

    node = start_node(tmp_path_factory.mktemp("cassandra-home"))
    try:
        yield node
    finally:
        stack.stop_service(node.cfg, "cassandra")
