"""Throwaway databases on the results server, each with its own least-privilege user:
for tests and benchmarks, never for pipelines (those use the stack's `dataplatform`)."""
from __future__ import annotations

import uuid

from spark_apps.common.mysql import ResultsDb


def create_scratch_db(admin_url: str, prefix: str = "dp_scratch") -> ResultsDb:
    admin = ResultsDb.from_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    conn = admin.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'%'")
    finally:
        conn.close()
    # An admin login through the socket (the local default) means the server is this machine.
    host = "127.0.0.1" if admin.unix_socket else admin.host
    return ResultsDb(host, admin.port, name, password, name)


def drop_scratch_db(admin_url: str, db: ResultsDb) -> None:
    conn = ResultsDb.from_url(admin_url).connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db.database}`")
            cur.execute(f"DROP USER IF EXISTS '{db.user}'@'%'")
    finally:
        conn.close()
