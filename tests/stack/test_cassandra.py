"""The embedded Apache Cassandra node (include/platform/stack/cassandra.py) on private ports
under a temporary $DP_HOME: it answers CQL on loopback only, keeps what was written across
`dp down` / start, leaves nothing running when stopped, and each fault stops it with one line.

Every Cassandra start costs seconds of CPU: one node serves the module; the fault tests stop
before a start (port taken) or early in one (corrupt commit log)."""
from __future__ import annotations

import os
import socket

import psutil
import pytest
from stack_helpers import make_config

from include.platform import stack
from include.platform.stack import cassandra

pytestmark = [pytest.mark.stack]


def _start(cfg: stack.StackConfig) -> bool:
    return stack.start_service(cfg, cassandra.service(cfg), dict(os.environ))


def _processes_of(cfg: stack.StackConfig) -> list[psutil.Process]:
    """Every process whose command line names this node's home (its JVM, however started)."""
    home = str(cassandra.cassandra_dir(cfg))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(home in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _assert_nothing_running(cfg: stack.StackConfig) -> None:
    assert stack.status(cfg)["cassandra"] is None
    assert not _processes_of(cfg)
    for port in (cfg.cassandra_port, cfg.cassandra_storage_port):
        assert not stack.port_open(port), port


@pytest.fixture
def private_cfg(tmp_path):
    """A node configuration of its own, stopped afterwards whatever the test did."""
    cfg = make_config(tmp_path)
    yield cfg
    stack.down(cfg, echo=lambda _: None)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("dp-cassandra"))
    assert _start(cfg)
    yield cfg
    stack.down(cfg, echo=lambda _: None)


def test_registered_in_the_stack(tmp_path):
    cfg = make_config(tmp_path)
    assert stack.SERVICES[-1] is cassandra and "cassandra" in stack.status(cfg)
    env = stack.stack_environment(cfg, "mysql://u:p@127.0.0.1:3306/d", "sqlite:////tmp/x.db")
    assert env["DP_CASSANDRA_CONTACT_POINTS"] == "127.0.0.1"
    assert env["DP_CASSANDRA_PORT"] == str(cfg.cassandra_port)


def test_node_answers_cql_on_loopback_only(node):
    assert cassandra.release_version(node.cassandra_port).startswith("5.0.")
    assert not _start(node)  # already running and ready: left alone
    pid = stack.status(node)["cassandra"]
    listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
    # CQL and storage only (no JMX), each on loopback
    assert {port for _ip, port in listening} == {node.cassandra_port, node.cassandra_storage_port}
    assert all(ip.removeprefix("::ffff:") == "127.0.0.1" for ip, _port in listening), listening


def test_data_survives_a_restart_and_stop_leaves_nothing(node):
    cluster = cassandra.connect(node.cassandra_port)
    try:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS kept WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS kept.readings (station text, hour int, value double, "
                        "PRIMARY KEY (station, hour)) WITH CLUSTERING ORDER BY (hour DESC)")
        insert = session.prepare("INSERT INTO kept.readings (station, hour, value) VALUES (?, ?, ?)")
        for hour in range(24):
            session.execute(insert, ("s1", hour, hour / 2))
    finally:
        cluster.shutdown()

    stack.down(node, echo=lambda _: None)
    _assert_nothing_running(node)
    assert any(cassandra.data_dir(node).glob("kept/readings-*/*-Data.db"))  # flushed on a clean stop

    assert _start(node)
    cluster = cassandra.connect(node.cassandra_port)
    try:
        rows = list(cluster.connect().execute("SELECT hour, value FROM kept.readings WHERE station = 's1'"))
    finally:
        cluster.shutdown()
    assert [(r.hour, r.value) for r in rows] == [(h, h / 2) for h in reversed(range(24))]


@pytest.mark.parametrize("which", ["cassandra_port", "cassandra_storage_port"])
def test_port_taken_is_one_line_naming_the_setting(private_cfg, which):
    cfg = private_cfg
    port = getattr(cfg, which)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(stack.StackError) as err:
            _start(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert f"port {port}" in message and "DP_CASSANDRA_PORT / DP_CASSANDRA_STORAGE_PORT" in message
    _assert_nothing_running(cfg)


def test_corrupt_commit_log_is_one_line_and_nothing_running(private_cfg):
    cfg = private_cfg
    # Two unreadable segments: Cassandra forgives the newest one (a write cut short by a
    # crash), not one before it.
    segments = cassandra.commitlog_dir(cfg)
    segments.mkdir(parents=True)
    for segment_id in (1700000000000, 1700000000001):
        (segments / f"CommitLog-7-{segment_id}.log").write_bytes(os.urandom(4096))
    with pytest.raises(stack.StackError) as err:
        _start(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("cassandra exited at start") and "commit log" in message, message
    _assert_nothing_running(cfg)


def test_java_newer_than_17_is_replaced_by_a_jdk_17_or_reported(tmp_path, monkeypatch):
    # Cassandra 5.0 fails at start on Java 18+ (its security manager): a JAVA_HOME at Java 25
    # must not reach the JVM command line.
    fake = tmp_path / "jdk25" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "25.0.1" 2025-10-21\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(fake.parents[1]))
    java = cassandra.find_java17()
    assert java != str(fake) and cassandra._java_major(java) == 17
    monkeypatch.setattr(cassandra.glob, "glob", lambda _pattern: [])
    with pytest.raises(stack.StackError, match="Cassandra 5.0 needs Java 17 but .* is version 25") as err:
        cassandra.find_java17()
    assert "\n" not in str(err.value)

