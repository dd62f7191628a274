"""Keyspaces and tables of the platform in Cassandra / Amazon Keyspaces, created by
``platform_bootstrap`` (:func:`bootstrap`) and by tests on their private node (:func:`ensure_schema`).

Idempotent: ``CREATE ... IF NOT EXISTS`` only, so re-running changes nothing; a replication
declared differently from an existing keyspace's is not altered (say so and change it by hand:
raising the replication factor needs a repair). The replication comes from settings
(``DP_CASSANDRA_REPLICATION``, a JSON object: ``{"class": "SimpleStrategy",
"replication_factor": 1}`` for the embedded node, ``{"class": "NetworkTopologyStrategy",
"<dc>": 3}`` on a cluster, ``{"class": "SingleRegionStrategy"}`` on Amazon Keyspaces).

Amazon Keyspaces creates keyspaces and tables asynchronously: a table can be used once
``system_schema_mcs.tables`` says ``ACTIVE``, so :func:`ensure_schema` polls it there (Cassandra
itself has no such table; its DDL is done when the driver has seen schema agreement).
"""
from __future__ import annotations

import json
import time
from typing import Callable, Mapping

from spark_apps.air_quality import tables as air_quality_tables
from spark_apps.streaming.weather import tables as weather_tables

ACTIVE_TIMEOUT_S = 300.0


def replication_cql(replication: dict | str) -> str:
    """``{'class': 'SimpleStrategy', 'replication_factor': 1}`` from a dict or JSON object."""
    if isinstance(replication, str):
        replication = json.loads(replication)
    if not isinstance(replication, dict) or "class" not in replication:
        raise ValueError(f"Cassandra replication must be a JSON object with a 'class', got {replication!r}")
    parts = []
    for key, value in replication.items():
        if not str(key).replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"not a replication option: {key!r}")
        text = str(value).replace("'", "''")
        parts.append(f"'{key}': '{text}'")
    return "{" + ", ".join(parts) + "}"


def keyspace_tables() -> dict[str, dict[str, str]]:
    """``{keyspace: {table: CREATE TABLE ...}}`` of everything the platform keeps in Cassandra:
    the weather pipeline's observations and hours, the air-quality conversion's raw readings."""
    return {
        weather_tables.KEYSPACE: weather_tables.table_statements(),
        air_quality_tables.KEYSPACE: air_quality_tables.table_statements(),
    }


def _existing_tables(session, keyspace: str) -> set[str]:
    rows = session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,))
    return {row.table_name for row in rows}


def _keyspaces_status(session, keyspace: str) -> dict[str, str] | None:
    """``{table: status}`` from Amazon Keyspaces' ``system_schema_mcs.tables``; None on Cassandra."""
    from cassandra import InvalidRequest

    try:
        rows = session.execute("SELECT table_name, status FROM system_schema_mcs.tables WHERE keyspace_name = %s",
                               (keyspace,))
    except InvalidRequest:  # no such keyspace: Apache Cassandra
        return None
    return {row.table_name: row.status for row in rows}


def wait_until_active(session, keyspace: str, tables: list[str], timeout_s: float = ACTIVE_TIMEOUT_S,
                      sleep: Callable[[float], None] = time.sleep) -> None:
    """On Amazon Keyspaces, wait until every one of ``tables`` is ``ACTIVE``; at once elsewhere."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = _keyspaces_status(session, keyspace)
        if status is None:
            return
        waiting = {t: status.get(t, "MISSING") for t in tables if status.get(t) != "ACTIVE"}
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Keyspaces tables of {keyspace} not ACTIVE after {timeout_s:.0f}s: {waiting}")
        sleep(2.0)


def ensure_schema(session, replication: dict | str, keyspaces: Mapping[str, Mapping[str, str]] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Create the keyspaces (with ``replication``) and tables of ``keyspaces`` (default: the
    platform's, :func:`keyspace_tables`; tests pass their private keyspaces' statements) that are
    missing; one line per change (empty when all were there). Waits for Keyspaces to make new
    tables active."""
    changes: list[str] = []
    replication_text = replication_cql(replication)
    for keyspace, statements in (keyspace_tables() if keyspaces is None else keyspaces).items():
        known = {row.keyspace_name for row in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
        if keyspace not in known:
            session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication_text}")
            changes.append(f"created keyspace {keyspace}")
            wait_until_active_keyspace(session, keyspace, sleep=sleep)
        existing = _existing_tables(session, keyspace)
        for table, cql in statements.items():
            if table not in existing:
                session.execute(cql)
                changes.append(f"created table {keyspace}.{table}")
        wait_until_active(session, keyspace, list(statements), sleep=sleep)
    return changes


def wait_until_active_keyspace(session, keyspace: str, timeout_s: float = ACTIVE_TIMEOUT_S,
                               sleep: Callable[[float], None] = time.sleep) -> None:
    """Keyspaces creates a keyspace asynchronously too: wait until ``system_schema.keyspaces`` lists it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                               (keyspace,))
        if rows.one() is not None:
            return
        sleep(2.0)
    raise TimeoutError(f"keyspace {keyspace} not visible after {timeout_s:.0f}s")


def bootstrap(replication: dict | str, env: dict | None = None, **overrides) -> list[str]:
    """``platform_bootstrap``'s task: connect with the ``DP_CASSANDRA_*`` configuration
    (spark_apps/common/cassandra.py; ``overrides``: contact_points, port, local_dc) and
    :func:`ensure_schema`."""
    from spark_apps.common.cassandra import CassandraConfig, connect

    cluster, session = connect(CassandraConfig.from_env(env, **overrides), request_timeout=60.0)
    try:
        return ensure_schema(session, replication)
    finally:
        cluster.shutdown()
