"""The embedded stack: every server the platform needs, on this machine, without Docker.

=================  ===========================================================
module             what runs
=================  ===========================================================
``mariadb``        the machine's MariaDB (installed/started when missing); the
                   results database and a least-privilege user
``postgres``       the machine's PostgreSQL (installed/started when missing):
                   Airflow's metadata DB (or SQLite: ``DP_METADATA_DB=sqlite``)
``moto``           AWS APIs (S3, EMR, Secrets Manager, ...) in server mode
``kafka``          Apache Kafka, one KRaft node, log under ``$DP_HOME/kafka``
``cassandra``      Apache Cassandra 5.0, one node, data under ``$DP_HOME/cassandra``
``websocket``      the platform's WebSocket service (thread samples as JSON)
``airflow``        api-server, scheduler, dag-processor, triggerer
``environment``    ``stack.env`` and the local Spark configuration
=================  ===========================================================

Every long-running process has the one shape of :mod:`.service` (start, ready, stop,
one-line errors): adding a service is one module with a ``service(cfg)`` function and
one entry in :data:`SERVICES`.

``up()`` is idempotent: what already runs is left alone. Any failure raises
:class:`StackError` with one line saying what failed and how to fix it, after
stopping whatever this call started, so nothing is left half-started.
State (pids, logs, generated secrets, the Airflow home, the Kafka log, the local lake)
lives in ``$DP_HOME`` (default ``~/.local/share/dataplatform``), outside the repository.
"""
from __future__ import annotations

import os
from typing import Callable

from include.platform.stack import airflow, cassandra, kafka, mariadb, moto, postgres, websocket
from include.platform.stack.environment import (
    LAKE_BUCKET,
    local_spark_driver_memory,
    read_env_file,
    stack_environment,
    write_env_file,
    write_spark_conf,
)
from include.platform.stack.mariadb import drop_results_db
from include.platform.stack.service import (
    Service,
    StackConfig,
    StackError,
    find_java,
    free_port,
    port_open,
    run_logged,
    running_pid,
    start_service,
    stop_service,
)

# The stack's own processes, in start order (stopped in reverse); Airflow's come last.
SERVICES = (moto, kafka, websocket, cassandra)
# Their process names (down/status must work without the jars or Java, so no service(cfg) call).
_SERVICE_NAMES = ("moto", "kafka", "websocket", "cassandra")
AIRFLOW_SERVICES = airflow.SERVICES
AIRFLOW_USER = airflow.USER
airflow_password = airflow.password

__all__ = [
    "AIRFLOW_SERVICES", "AIRFLOW_USER", "SERVICES", "Service", "StackConfig", "StackError",
    "airflow_password", "build_artifacts", "down", "drop_results_db", "find_java", "free_port",
    "local_spark_driver_memory", "port_open", "prepare", "read_env_file", "running_pid",
    "stack_environment", "start_service", "status", "stop_service", "up", "write_env_file",
]


def prepare(cfg: StackConfig) -> dict[str, str]:
    """Preflight checks, databases, secrets, configuration files (no long-running process)."""
    find_java()
    for path in (cfg.home, cfg.airflow_home, cfg.lake_dir):
        path.mkdir(parents=True, exist_ok=True)
    results_url = mariadb.ensure(cfg)
    metadata_url = postgres.ensure(cfg)
    write_spark_conf(cfg)
    env = stack_environment(cfg, results_url, metadata_url)
    write_env_file(cfg, env)
    build_artifacts()
    return {**os.environ, **env}


def build_artifacts() -> None:
    """Compile the Protobuf schemas and zip spark_apps/ (what --py-files ships)."""
    from include.platform import build

    build.compile_protos()
    from include.platform.spark_jobs import build_bundle

    build_bundle()


def up(cfg: StackConfig | None = None, with_airflow: bool = True, echo: Callable[[str], None] = print) -> dict[str, str]:
    cfg = cfg or StackConfig()
    started: list[str] = []
    try:
        env = prepare(cfg)
        for module in SERVICES:
            svc = module.service(cfg)
            if start_service(cfg, svc, env):
                started.append(svc.name)
                echo(f"started {svc.name}")
        # The lake bucket exists before anything writes to the lake (moto keeps no state).
        moto.ensure_buckets(cfg, LAKE_BUCKET)
        if with_airflow:
            run_logged(cfg, "airflow-db-migrate", [airflow.airflow_bin(), "db", "migrate"],
                       600, "airflow db migrate failed", env=env)
            for svc in airflow.services(cfg):
                if start_service(cfg, svc, env):
                    started.append(svc.name)
                    echo(f"started {svc.name}")
            if airflow.trigger_bootstrap(cfg, env):
                echo(f"triggered {airflow.BOOTSTRAP_DAG} (topics, tables and keyspaces of this version)")
        return env
    except BaseException:
        for name in reversed(started):
            stop_service(cfg, name)
        raise


def down(cfg: StackConfig | None = None, echo: Callable[[str], None] = print) -> None:
    cfg = cfg or StackConfig()
    for name in (*reversed(AIRFLOW_SERVICES), *reversed(_SERVICE_NAMES)):
        if stop_service(cfg, name):
            echo(f"stopped {name}")


def status(cfg: StackConfig | None = None) -> dict[str, int | None]:
    cfg = cfg or StackConfig()
    return {name: running_pid(cfg, name) for name in (*_SERVICE_NAMES, *AIRFLOW_SERVICES)}
