"""The one shape every service of the embedded stack has, and the process plumbing behind it.

A :class:`Service` is a long-running process the stack starts itself: its command line, a
readiness check, the port it must own, an optional ``before_start`` (format storage, write a
config file) and its own environment. :func:`start_service` starts it unless it runs, waits
until ready and turns every failure into one :class:`StackError` line; :func:`stop_service`
stops its whole process group. A new service is one module with a ``service(cfg)`` function
returning a :class:`Service` (see ``kafka.py``, ``moto.py``).
"""
from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from include.platform.settings import default_home


class StackError(RuntimeError):
    """A failure the user can fix; the message is one line: what failed, then how to fix it."""


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# Local MariaDB/MySQL as root through the unix socket: a freshly apt-installed MariaDB lets
# root in this way only (no TCP password), which is how the platform's own users get made.
DEFAULT_MYSQL_ADMIN_URL = "mysql://root@localhost/mysql?unix_socket=/run/mysqld/mysqld.sock"


@dataclass
class StackConfig:
    home: Path = field(default_factory=default_home)
    airflow_port: int = field(default_factory=lambda: _port("DP_AIRFLOW_PORT", 8080))
    kafka_port: int = field(default_factory=lambda: _port("DP_KAFKA_PORT", 9092))
    kafka_controller_port: int = field(default_factory=lambda: _port("DP_KAFKA_CONTROLLER_PORT", 9093))
    moto_port: int = field(default_factory=lambda: _port("DP_MOTO_PORT", 4566))
    # The embedded Cassandra node: CQL (native protocol) and its storage (gossip) port.
    cassandra_port: int = field(default_factory=lambda: _port("DP_CASSANDRA_PORT", 9042))
    cassandra_storage_port: int = field(default_factory=lambda: _port("DP_CASSANDRA_STORAGE_PORT", 7000))
    mysql_admin_url: str = field(default_factory=lambda: os.environ.get("DP_MYSQL_ADMIN_URL", DEFAULT_MYSQL_ADMIN_URL))
    # The results server the pipelines connect to over TCP (the admin URL may be a socket).
    mysql_host: str = field(default_factory=lambda: os.environ.get("DP_MYSQL_HOST", "127.0.0.1"))
    mysql_port: int = field(default_factory=lambda: _port("DP_MYSQL_PORT", 3306))
    # The pipelines' own database and user on the results server.
    results_db: str = field(default_factory=lambda: os.environ.get("DP_RESULTS_DB_NAME", "dataplatform"))
    results_user: str = field(default_factory=lambda: os.environ.get("DP_RESULTS_DB_USER", "dataplatform"))
    # "postgres" (default: installed and started when missing) or "sqlite".
    metadata_db: str = field(default_factory=lambda: os.environ.get("DP_METADATA_DB", "postgres"))
    postgres_port: int = field(default_factory=lambda: _port("DP_POSTGRES_PORT", 5432))
    # Where the lake lives: "file" ($DP_HOME/lake) or "s3" (a bucket of the embedded moto,
    # through s3a://: the code path EMR runs on s3://, which the DAG tests use). The demo's
    # default is file because moto keeps its buckets in memory: a restart of the stack would
    # empty an S3 lake - streaming checkpoints included - while Kafka's log and MySQL persist,
    # and the jobs would then replay the topics into MySQL again.
    lake: str = field(default_factory=lambda: os.environ.get("DP_LAKE", "file"))

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def env_file(self) -> Path:
        return self.home / "stack.env"

    @property
    def passwords_file(self) -> Path:
        return self.secrets_dir / "airflow_passwords.json"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def spark_conf_dir(self) -> Path:
        return self.home / "spark-conf"


# --------------------------------------------------------------------------- helpers


_handed_out_ports: set[int] = set()


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A TCP port nothing listens on now (for private stacks in tests and benchmarks).

    Chosen below the kernel's ephemeral range where there is room: a port from ``bind(0)`` is one
    the kernel also hands to the next program that binds port 0 or connects out (Spark's driver,
    Py4J, the JVMs' RMI), and one such program took a stack test's Kafka port between its choice
    and Kafka's start (2026-12-04, every stack test failed). Ports below the range are taken only by
    programs that ask for them by number; and this process never hands out one port twice.
    """
    low, _high = _ephemeral_port_range()
    if low > 12000:
        for port in random.sample(range(low - 10000, low), 200):
            if port in _handed_out_ports:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out_ports.add(port)
            return port
    with socket.socket() as s:  # no room below the range (or all taken): the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (localhost only)
            return 200 <= resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def wait(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def secret(cfg: StackConfig, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> str:
    """A generated secret kept in $DP_HOME/secrets (0600), created once and reused."""
    cfg.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.secrets_dir, 0o700)
    path = cfg.secrets_dir / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    last = [line.strip() for line in text[-lines:] if line.strip()]
    return " | ".join(last)[-300:]


def find_java() -> str:
    """Path of a Java >= 17 runtime (Spark 4 and Kafka 4 need it), or StackError."""
    java_home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(java_home) / "bin" / "java")] if java_home else []
    which = shutil.which("java")
    if which:
        candidates.append(which)
    for java in candidates:
        if not os.access(java, os.X_OK):
            continue
        out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
        match = re.search(r'version "(\d+)', out)
        if match and int(match.group(1)) >= 17:
            return java
        raise StackError(
            f"Java 17+ is required by Spark 4 and Kafka 4 but {java} is version {match.group(1) if match else '?'}: "
            "install openjdk-17-jre-headless (apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at a JDK 17+"
        )
    raise StackError(
        "Java not found: Spark and Kafka need Java 17+; install it (apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
    )


def apt_install(cfg: StackConfig, packages: list[str], why: str) -> None:
    """Install Debian packages (as root, after `apt-get update`), or say how to."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(f"{why}: run `sudo apt-get install -y {' '.join(packages)}` and retry")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_logged(cfg, "apt-get", ["apt-get", "update", "-q"], 600, "apt-get update failed", env=env)
    run_logged(cfg, "apt-get", ["apt-get", "install", "-y", "-q", *packages], 900,
               f"installing {' '.join(packages)} with apt-get failed", env=env)


def run_logged(cfg: StackConfig, name: str, argv: list[str], timeout: float, what: str, env=None) -> None:
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    log = cfg.log_dir / f"{name}.log"
    with open(log, "ab") as out:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{what}: timed out after {timeout:.0f}s; see {log}") from None
    if proc.returncode != 0:
        raise StackError(f"{what} (exit {proc.returncode}): {tail(log)}; full log: {log}")


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    ports: tuple[int, ...] = ()
    timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)  # extra variables for this process only
    before_start: Callable[[], None] | None = None
    # Environment variable that chooses the port, for the "port taken" message.
    port_setting: str = ""


def _pidfile(cfg: StackConfig, name: str) -> Path:
    return cfg.run_dir / f"{name}.pid"


def running_pid(cfg: StackConfig, name: str) -> int | None:
    path = _pidfile(cfg, name)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_service(cfg: StackConfig, svc: Service, env: dict[str, str]) -> bool:
    """Start ``svc`` unless it already runs. Returns True when this call started it.

    On any failure the process this call started is stopped again, and StackError says why.
    """
    if running_pid(cfg, svc.name):
        if svc.ready():
            return False
        stop_service(cfg, svc.name)
    for port in svc.ports:
        if port_open(port):
            setting = svc.port_setting or f"DP_{svc.name.split('-')[0].upper()}_PORT"
            raise StackError(
                f"port {port} needed by {svc.name} is already in use by another program: "
                f"stop it (e.g. `ss -ltnp 'sport = :{port}'`) or choose another port with {setting}"
            )
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    if svc.before_start:
        svc.before_start()
    env = {**env, **svc.env}
    log = cfg.log_dir / f"{svc.name}.log"
    with open(log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {svc.name}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            svc.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=str(cfg.home), start_new_session=True,  # own process group: stop kills its children
        )
    _pidfile(cfg, svc.name).write_text(str(proc.pid))
    try:
        deadline = time.monotonic() + svc.timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{svc.name} exited at start (code {proc.returncode}): {tail(log)}; full log: {log}")
            if svc.ready():
                return True
            time.sleep(0.5)
        raise StackError(f"{svc.name} did not become ready in {svc.timeout:.0f}s: {tail(log)}; full log: {log}")
    except BaseException:
        stop_service(cfg, svc.name, grace=5)
        raise


def stop_service(cfg: StackConfig, name: str, grace: float = 20.0) -> bool:
    pid = running_pid(cfg, name)
    pidfile = _pidfile(cfg, name)
    if not pid:
        pidfile.unlink(missing_ok=True)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            # When this process started the service it is our child: reap it, or the
            # zombie would look alive to killpg(pid, 0).
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pidfile.unlink(missing_ok=True)
    return True
