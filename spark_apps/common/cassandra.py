"""Cassandra (and Amazon Keyspaces) access for jobs and tasks: one session factory, idempotent
writes of Spark rows with the Python driver (``cassandra-driver``).

Why not the Spark Cassandra Connector: no release of it supports Spark 4 (3.5.1, the latest, is
built for Spark 3.5 / Scala 2.12-2.13; Spark 4 support sits in open pull requests of
apache/cassandra-spark-connector). So the streaming jobs write from ``foreachBatch`` with the
Python driver, which ships to executors as an ordinary package (its wheel bundles libev).

Configuration (:class:`CassandraConfig`), from the job's arguments and the environment:

* ``DP_CASSANDRA_CONTACT_POINTS`` (comma separated, default ``127.0.0.1``) and
  ``DP_CASSANDRA_PORT`` (9042): the embedded stack writes both into ``stack.env``;
* ``DP_CASSANDRA_LOCAL_DC``: the data centre that is "local" for ``LOCAL_QUORUM`` and the
  load balancing (empty: the data centre of the first contact point the driver reaches);
* ``DP_CASSANDRA_SSL`` (``true``/``false``) and ``DP_CASSANDRA_SSL_CA_FILE`` (a PEM bundle;
  empty: the system's trust store);
* credentials, never in code, arguments or logs: ``DP_CASSANDRA_USERNAME`` +
  ``DP_CASSANDRA_PASSWORD`` from the environment, or an AWS Secrets Manager secret named by
  ``DP_CASSANDRA_SECRET_ID`` holding ``{"username": ..., "password": ...}``; they become a
  ``PlainTextAuthProvider``;
* ``DP_CASSANDRA_PROTOCOL_VERSION`` (empty: negotiated by the driver).

Amazon Keyspaces is the same code with this configuration (nothing else changes)::

    DP_CASSANDRA_CONTACT_POINTS=cassandra.eu-west-1.amazonaws.com
    DP_CASSANDRA_PORT=9142                    # Keyspaces speaks TLS only, on 9142
    DP_CASSANDRA_SSL=true
    DP_CASSANDRA_SSL_CA_FILE=/etc/ssl/certs/ca-certificates.crt   # holds the Amazon root CAs 1-4
    DP_CASSANDRA_LOCAL_DC=eu-west-1           # Keyspaces reports the region as the data centre
    DP_CASSANDRA_SECRET_ID=dataplatform/keyspaces   # service-specific credentials of an IAM user
    DP_CASSANDRA_PROTOCOL_VERSION=4
    DP_CASSANDRA_REPLICATION='{"class": "SingleRegionStrategy"}'   # read by platform_bootstrap

Keyspaces takes writes at ``LOCAL_QUORUM`` only (the consistency used here for every
statement), creates tables asynchronously (``include/cassandra/schema.py`` waits until
``system_schema_mcs.tables`` says ``ACTIVE``) and checks the server certificate against the
Amazon root CAs; its peers are announced by IP address, so the certificate's host name is not
checked (as in AWS's own Python example), only its chain. SigV4 authentication (the
``cassandra-sigv4`` plugin, IAM roles instead of service-specific credentials) is not wired in.

Writes (:func:`write_rows`, :func:`write_frame`): prepared statements, marked idempotent, run with
``execute_concurrent_with_args``; a statement that failed for a transient reason (timeout,
unavailable, overloaded, connection lost) is sent again, a few rounds with a growing pause, and
then the write raises (the micro-batch fails and is replayed later). Only upserts (INSERTs of
whole rows, no counters, no list appends, no ``now()``/``uuid()``) go through here, so sending a
statement twice, or replaying a whole micro-batch, leaves the same rows. Null values are bound
as *unset* (no tombstones): a column left null keeps what a previous write put there, which for
an upsert of the same observation is the same value. A row that replaces a *different* earlier
version of itself (an air-quality station-hour superseded by a later export) is written with
``unset_nulls=False``: its nulls are written as nulls (one tombstone per null cell), so no value
of the earlier version survives.

Where Cassandra is travels to a job as arguments (:func:`location_arguments`,
:func:`add_location_arguments`, :func:`config_from_arguments`), so an EMR step gets it exactly as
a local spark-submit does; credentials never do.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

log = logging.getLogger(__name__)

DEFAULT_PORT = 9042
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 20.0
# Requests in flight per writing task; the driver multiplexes them on its connections.
DEFAULT_CONCURRENCY = 64
# Rows handed to execute_concurrent_with_args at a time (bounds the memory of a partition).
CHUNK_ROWS = 2000
# Rounds of re-sending the statements that failed for a transient reason, and the pause before each.
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 4.0)
# Retries the driver's retry policy grants one statement (timeouts, unavailable, request errors).
DRIVER_RETRIES = 3


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class CassandraConfig:
    """Where and how to connect. Picklable (a job's closure ships it to the executors); the
    password never appears in ``repr``."""

    contact_points: tuple[str, ...] = ("127.0.0.1",)
    port: int = DEFAULT_PORT
    local_dc: str = ""
    ssl: bool = False
    ssl_ca_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    protocol_version: int | None = None

    def __repr__(self) -> str:
        auth = f"{self.username}@" if self.username else ""
        tls = " tls" if self.ssl else ""
        return f"CassandraConfig({auth}{','.join(self.contact_points)}:{self.port}{tls})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "CassandraConfig":
        """The configuration of the ``DP_CASSANDRA_*`` variables (module docstring); keyword
        arguments that are not None override them (a job's command-line options)."""
        env = os.environ if env is None else env
        secret_id = overrides.pop("secret_id", None) or env.get("DP_CASSANDRA_SECRET_ID", "")
        points = overrides.pop("contact_points", None) or env.get("DP_CASSANDRA_CONTACT_POINTS") or "127.0.0.1"
        if isinstance(points, str):
            points = tuple(p.strip() for p in points.split(",") if p.strip())
        protocol = env.get("DP_CASSANDRA_PROTOCOL_VERSION") or None
        values = {
            "contact_points": tuple(points),
            "port": int(env.get("DP_CASSANDRA_PORT") or DEFAULT_PORT),
            "local_dc": env.get("DP_CASSANDRA_LOCAL_DC", ""),
            "ssl": _truthy(env.get("DP_CASSANDRA_SSL")),
            "ssl_ca_file": env.get("DP_CASSANDRA_SSL_CA_FILE", ""),
            "protocol_version": int(protocol) if protocol else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        username, password = env.get("DP_CASSANDRA_USERNAME", ""), env.get("DP_CASSANDRA_PASSWORD", "")
        if not username and secret_id:
            username, password = _secret_credentials(secret_id)
        return cls(username=username, password=password, **values)


def location_arguments(contact_points: str, port: int, local_dc: str = "", ssl: bool = False, ssl_ca_file: str = "",
                       protocol_version: int | None = None, secret_id: str = "") -> list[str]:
    """A job's command-line options saying where Cassandra is and how to reach it (read by
    :func:`config_from_arguments`): all of the configuration but the credentials, so that an EMR
    step, whose YARN containers see none of the scheduler's ``DP_CASSANDRA_*`` variables, reaches
    Amazon Keyspaces exactly as a local spark-submit does. ``secret_id`` names the Secrets Manager
    secret holding the credentials (a name, not a secret)."""
    args = ["--cassandra-contact-points", contact_points, "--cassandra-port", str(port)]
    if local_dc:
        args += ["--cassandra-local-dc", local_dc]
    if ssl:
        args += ["--cassandra-ssl", "true"]
    if ssl_ca_file:
        args += ["--cassandra-ssl-ca-file", ssl_ca_file]
    if protocol_version:
        args += ["--cassandra-protocol-version", str(protocol_version)]
    if secret_id:
        args += ["--cassandra-secret-id", secret_id]
    return args


def add_location_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cassandra-contact-points", help="default $DP_CASSANDRA_CONTACT_POINTS")
    parser.add_argument("--cassandra-port", type=int, help="default $DP_CASSANDRA_PORT")
    parser.add_argument("--cassandra-local-dc", help="default $DP_CASSANDRA_LOCAL_DC")
    parser.add_argument("--cassandra-ssl", choices=["true", "false"], help="default $DP_CASSANDRA_SSL")
    parser.add_argument("--cassandra-ssl-ca-file", help="default $DP_CASSANDRA_SSL_CA_FILE")
    parser.add_argument("--cassandra-protocol-version", type=int, help="default $DP_CASSANDRA_PROTOCOL_VERSION")
    parser.add_argument("--cassandra-secret-id", help="Secrets Manager secret with the credentials; "
                        "default $DP_CASSANDRA_SECRET_ID")


def config_from_arguments(args: argparse.Namespace) -> CassandraConfig:
    """The configuration of the ``DP_CASSANDRA_*`` variables with the options of
    :func:`add_location_arguments` (those given) over them; credentials from the environment or
    Secrets Manager only."""
    return CassandraConfig.from_env(
        contact_points=args.cassandra_contact_points, port=args.cassandra_port, local_dc=args.cassandra_local_dc,
        ssl=None if args.cassandra_ssl is None else args.cassandra_ssl == "true",
        ssl_ca_file=args.cassandra_ssl_ca_file, protocol_version=args.cassandra_protocol_version,
        secret_id=args.cassandra_secret_id)


def _secret_credentials(secret_id: str) -> tuple[str, str]:
    import boto3  # only needed on AWS

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    return secret["username"], secret["password"]


def _retry_policy():
    from cassandra.policies import RetryPolicy

    class IdempotentWriteRetryPolicy(RetryPolicy):
        """Retry what may be retried: any statement marked idempotent after a write timeout or
        a request error (connection lost, overloaded coordinator), up to ``DRIVER_RETRIES``
        times; reads and unavailable replicas as the driver's default does, but also up to
        that many times. A statement not marked idempotent is never re-sent after a write
        timeout (it may have been applied)."""

        def on_read_timeout(self, query, consistency, required_responses, received_responses, data_retrieved,
                            retry_num):
            if retry_num < DRIVER_RETRIES and received_responses >= required_responses:
                return self.RETRY, consistency
            return self.RETHROW, None

        def on_write_timeout(self, query, consistency, write_type, required_responses, received_responses,
                             retry_num):
            if retry_num < DRIVER_RETRIES and getattr(query, "is_idempotent", False):
                return self.RETRY, consistency
            return self.RETHROW, None

        def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
            return (self.RETRY_NEXT_HOST, None) if retry_num < DRIVER_RETRIES else (self.RETHROW, None)

        def on_request_error(self, query, consistency, error, retry_num):
            if retry_num < DRIVER_RETRIES and getattr(query, "is_idempotent", False):
                return self.RETRY_NEXT_HOST, None
            return self.RETHROW, None

    return IdempotentWriteRetryPolicy()


def _ssl_context(config: CassandraConfig):
    import ssl

    context = ssl.create_default_context(cafile=config.ssl_ca_file or None)
    # Chain verified against the CAs; host names are not (Keyspaces peers are IP addresses).
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_cluster(config: CassandraConfig, request_timeout: float = REQUEST_TIMEOUT_S):
    """A driver ``Cluster`` for ``config`` (the caller connects and shuts it down): LOCAL_QUORUM,
    token-aware DC-aware load balancing, the idempotent-write retry policy, TLS and credentials
    when configured, reconnection to a node that went away within 30 s of it coming back."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=config.local_dc)),
        retry_policy=_retry_policy(),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=request_timeout,
    )
    kwargs = {}
    if config.protocol_version:
        kwargs["protocol_version"] = config.protocol_version
    if config.ssl:
        kwargs["ssl_context"] = _ssl_context(config)
    if config.username:
        kwargs["auth_provider"] = PlainTextAuthProvider(username=config.username, password=config.password)
    return Cluster(
        list(config.contact_points), port=config.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        reconnection_policy=ExponentialReconnectionPolicy(1.0, 30.0),
        connect_timeout=CONNECT_TIMEOUT_S, control_connection_timeout=CONNECT_TIMEOUT_S,
        **kwargs,
    )


def connect(config: CassandraConfig, request_timeout: float = REQUEST_TIMEOUT_S):
    """``(cluster, session)``, connected; shut the cluster down when done."""
    cluster = make_cluster(config, request_timeout)
    try:
        return cluster, cluster.connect()
    except Exception:
        cluster.shutdown()
        raise


# --- one session per process ---------------------------------------------------------------
# Each Python worker of an executor (reused across tasks and micro-batches) keeps one connected
# session per configuration, so a micro-batch pays no connection setup; a session that lost
# every host is dropped, and the next write connects anew.

_sessions: dict[CassandraConfig, tuple] = {}
_prepared: dict[tuple[CassandraConfig, str], object] = {}
_lock = threading.Lock()


def shared_session(config: CassandraConfig):
    with _lock:
        entry = _sessions.get(config)
        if entry is None:
            entry = _sessions[config] = connect(config)
        return entry[1]


def drop_shared_session(config: CassandraConfig) -> None:
    with _lock:
        entry = _sessions.pop(config, None)
        for key in [k for k in _prepared if k[0] == config]:
            del _prepared[key]
    if entry is not None:
        try:
            entry[0].shutdown()
        except Exception:  # a cluster that lost its hosts may fail to shut down cleanly: it is dropped anyway
            log.debug("shutting down a dropped Cassandra session failed", exc_info=True)


def prepared(session, config: CassandraConfig, cql: str):
    """``cql`` prepared once per session, marked idempotent (every statement here is an upsert)."""
    key = (config, cql)
    with _lock:
        statement = _prepared.get(key)
    if statement is None:
        statement = session.prepare(cql)
        statement.is_idempotent = True
        with _lock:
            _prepared[key] = statement
    return statement


def _bind_values(row: Sequence, unset_nulls: bool = True) -> tuple:
    from cassandra.query import UNSET_VALUE

    if not unset_nulls:
        return tuple(row)
    return tuple(UNSET_VALUE if value is None else value for value in row)


def _transient(error: BaseException) -> bool:
    from cassandra import OperationTimedOut, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException
    from cassandra.protocol import OverloadedErrorMessage

    return isinstance(error, (OperationTimedOut, Unavailable, WriteTimeout, NoHostAvailable, ConnectionException,
                              OverloadedErrorMessage))


def execute_idempotent(session, statement, rows: list[tuple], concurrency: int = DEFAULT_CONCURRENCY,
                       pauses: Sequence[float] = RETRY_PAUSES_S, sleep=time.sleep, unset_nulls: bool = True) -> int:
    """Run ``statement`` (prepared, idempotent) once per row with ``execute_concurrent_with_args``;
    rows that failed for a transient reason are sent again after each pause of ``pauses``. Raises
    the first remaining error (a non-transient one at once). Returns the number of rows written.
    Nulls are bound as unset unless ``unset_nulls`` is False (module docstring)."""
    from cassandra.concurrent import execute_concurrent_with_args

    pending = [_bind_values(row, unset_nulls) for row in rows]
    total = len(pending)
    for attempt in range(len(pauses) + 1):
        results = execute_concurrent_with_args(session, statement, pending, concurrency=concurrency,
                                               raise_on_first_error=False)
        failed = [(params, result.result_or_exc) for params, result in zip(pending, results) if not result.success]
        if not failed:
            return total
        errors = [error for _, error in failed]
        permanent = next((e for e in errors if not _transient(e)), None)
        if permanent is not None or attempt == len(pauses):
            raise permanent or errors[0]
        log.warning("%d of %d Cassandra writes failed (%s); sending them again in %.1fs",
                    len(failed), len(pending), type(errors[0]).__name__, pauses[attempt])
        sleep(pauses[attempt])
        pending = [params for params, _ in failed]
    raise AssertionError("unreachable")


def write_rows(config: CassandraConfig, cql: str, rows: Iterable[Sequence],
               concurrency: int = DEFAULT_CONCURRENCY, unset_nulls: bool = True) -> int:
    """Upsert ``rows`` (tuples in the order of ``cql``'s markers) through this process's shared
    session, in chunks of :data:`CHUNK_ROWS`. A write that finally fails drops the session
    (the next call connects anew) and raises."""
    from cassandra.cluster import NoHostAvailable

    written = 0
    try:
        session = shared_session(config)
        statement = prepared(session, config, cql)
        for chunk in _chunks(rows, CHUNK_ROWS):
            written += execute_idempotent(session, statement, chunk, concurrency, unset_nulls=unset_nulls)
    except (NoHostAvailable, OSError):
        drop_shared_session(config)
        raise
    return written


def _chunks(rows: Iterable[Sequence], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(tuple(row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_frame(df, config: CassandraConfig, cql: str, concurrency: int = DEFAULT_CONCURRENCY,
                unset_nulls: bool = True) -> int:
    """Upsert every row of a static DataFrame (columns in the order of ``cql``'s markers), each
    partition by the executor holding it (:func:`write_rows`). One Spark job; it fails when any
    partition's write finally fails. Returns the number of rows written."""

    def write_partition(rows):
        yield write_rows(config, cql, rows, concurrency, unset_nulls)

    return sum(df.rdd.mapPartitions(write_partition).collect())
