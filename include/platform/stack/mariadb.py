"""The results database: the machine's MariaDB (or any MySQL named by ``DP_MYSQL_ADMIN_URL``).

MariaDB is a system service, not a process of the stack: when the admin URL points at this
machine and nothing answers, it is apt-installed if missing and started; the stack never
stops it. The admin login (root through the unix socket by default, the only way into a
freshly installed MariaDB) creates the pipelines' database and least-privilege user, whose
TCP URL is what the pipelines get.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from include.platform.stack.service import StackConfig, StackError, apt_install, port_open, secret, wait

_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _admin(cfg: StackConfig):
    from spark_apps.common.mysql import ResultsDb

    return ResultsDb.from_url(cfg.mysql_admin_url)


def _reachable(admin, cfg: StackConfig) -> bool:
    if admin.unix_socket:
        return Path(admin.unix_socket).exists() and port_open(cfg.mysql_port, cfg.mysql_host)
    return port_open(admin.port, admin.host)


def ensure_server(cfg: StackConfig) -> None:
    """The results server answers, or StackError. A local one is installed and started when needed."""
    admin = _admin(cfg)
    if _reachable(admin, cfg):
        return
    if admin.host not in _LOCAL_HOSTS:
        raise StackError(f"MySQL/MariaDB unreachable at {admin.host}:{admin.port}: start it or fix DP_MYSQL_ADMIN_URL")
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(mariadbd):
        apt_install(cfg, ["mariadb-server"], "MariaDB is not installed (or set DP_MYSQL_ADMIN_URL to a MySQL server)")
    if os.geteuid() != 0:
        raise StackError(f"MariaDB is not running on {cfg.mysql_host}:{cfg.mysql_port}: start it (sudo service mariadb start)")
    # The machine's own init script (it also creates /run/mysqld); no systemd in containers.
    started = subprocess.run(["service", "mariadb", "start"], capture_output=True, text=True)
    if not wait(lambda: _reachable(admin, cfg), 60):
        detail = (started.stdout + started.stderr).strip().splitlines()[-1:] or ["no output"]
        raise StackError(
            f"MariaDB did not start on {cfg.mysql_host}:{cfg.mysql_port} ({detail[0][:200]}): "
            "see /var/log/mysql/error.log or run `service mariadb start` by hand"
        )


def _connect_admin(cfg: StackConfig):
    admin = _admin(cfg)
    try:
        return admin.connect(autocommit=True)
    except Exception as exc:  # pymysql.err.OperationalError: access denied, ...
        code = getattr(exc, "args", [None])[0]
        if code in (1045, 1698):
            raise StackError(
                f"MariaDB at {admin.unix_socket or f'{admin.host}:{admin.port}'} rejected the admin login "
                f"'{admin.user}' (wrong password or no access this way): "
                "set DP_MYSQL_ADMIN_URL=mysql://USER:PASSWORD@HOST:PORT/mysql"
            ) from None
        raise StackError(f"MariaDB at {admin.host}:{admin.port} refused the connection ({exc}): check the server log") from None


def ensure(cfg: StackConfig) -> str:
    """Make sure the results server runs; create the platform's database and user.

    Returns the pipelines' connection URL (least-privilege user over TCP, never root).
    """
    ensure_server(cfg)
    conn = _connect_admin(cfg)
    password = secret(cfg, "mysql_password")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{cfg.results_db}` CHARACTER SET utf8mb4")
            for host in ("localhost", "127.0.0.1", "%"):
                quoted = host.replace("%", "%%")  # these statements go through %-formatting
                cur.execute(f"CREATE USER IF NOT EXISTS '{cfg.results_user}'@'{quoted}' IDENTIFIED BY %s", (password,))
                # Re-applied on every run so a lost secrets file never locks the platform out.
                cur.execute(f"ALTER USER '{cfg.results_user}'@'{quoted}' IDENTIFIED BY %s", (password,))
                # Only what the pipelines do: read/write results, create their tables and the
                # per-run staging tables that make writes idempotent (spark_apps/common/mysql.py).
                cur.execute(
                    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE VIEW "
                    f"ON `{cfg.results_db}`.* TO '{cfg.results_user}'@'{host}'"
                )
    finally:
        conn.close()
    admin = _admin(cfg)
    host, port = (cfg.mysql_host, cfg.mysql_port) if admin.unix_socket else (admin.host, admin.port)
    return f"mysql://{cfg.results_user}:{quote(password, safe='')}@{host}:{port}/{cfg.results_db}"


def drop_results_db(cfg: StackConfig) -> None:
    """Drop the results database and user that :func:`ensure` made (private test and bench stacks)."""
    conn = _connect_admin(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{cfg.results_db}`")
            for host in ("localhost", "127.0.0.1", "%"):
                cur.execute(f"DROP USER IF EXISTS '{cfg.results_user}'@'{host}'")
    finally:
        conn.close()
