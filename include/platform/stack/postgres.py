"""Airflow's metadata database: the machine's PostgreSQL (``DP_METADATA_DB=postgres``, the
default), installed and started when missing, with its own role and database; or SQLite
(``DP_METADATA_DB=sqlite``: one process at a time, for throwaway stacks in tests).

Like MariaDB, PostgreSQL is a system service the stack starts but never stops. The role is
made through ``psql`` as the ``postgres`` OS user (Debian's peer authentication on the
socket); Airflow then connects over TCP with the generated password.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from include.platform.stack.service import StackConfig, StackError, apt_install, port_open, secret, wait

ROLE = DATABASE = "dataplatform_airflow"


def _psql(sql: str) -> str:
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise StackError(f"PostgreSQL admin command failed ({proc.stderr.strip()[:200]}): check `service postgresql status`")
    return proc.stdout.strip()


def ensure_server(cfg: StackConfig) -> None:
    if port_open(cfg.postgres_port):
        return
    if os.geteuid() != 0:
        raise StackError(f"PostgreSQL unreachable on 127.0.0.1:{cfg.postgres_port}: start it or set DP_METADATA_DB=sqlite")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        apt_install(cfg, ["postgresql"], "PostgreSQL is not installed (or set DP_METADATA_DB=sqlite)")
    started = subprocess.run(["service", "postgresql", "start"], capture_output=True, text=True)
    if not wait(lambda: port_open(cfg.postgres_port), 60):
        detail = (started.stdout + started.stderr).strip().splitlines()[-1:] or ["no output"]
        raise StackError(
            f"PostgreSQL did not start on 127.0.0.1:{cfg.postgres_port} ({detail[0][:200]}): "
            "see /var/log/postgresql/ or run `service postgresql start` by hand"
        )


def ensure(cfg: StackConfig) -> str:
    """SQLAlchemy URL of Airflow's metadata DB."""
    if cfg.metadata_db == "sqlite":
        return f"sqlite:///{cfg.airflow_home / 'airflow.db'}"
    if cfg.metadata_db != "postgres":
        raise StackError(f"DP_METADATA_DB must be 'postgres' or 'sqlite', not {cfg.metadata_db!r}")
    ensure_server(cfg)
    if not shutil.which("runuser") or os.geteuid() != 0:
        raise StackError(
            "creating Airflow's PostgreSQL role needs root (runuser -u postgres): run as root or set DP_METADATA_DB=sqlite")
    password = secret(cfg, "postgres_password")
    exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'")
    # The password goes through a psql variable (:'pw' quotes it), never into the command line.
    verb = "ALTER" if exists else "CREATE"
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=f"\\set pw '{password}'\n{verb} ROLE {ROLE} LOGIN PASSWORD :'pw';\n",
        capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0:
        raise StackError(f"creating the PostgreSQL role {ROLE} failed ({proc.stderr.strip()[:200]})")
    if not _psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"):
        _psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    return f"postgresql+psycopg2://{ROLE}:{quote(password, safe='')}@127.0.0.1:{cfg.postgres_port}/{DATABASE}"
