"""The stack's environment: every variable its processes (and the user's shell) need, the
``stack.env`` file that holds them, and the Spark configuration of local applications."""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from include.platform import jvm
from include.platform.settings import REPO_ROOT
from include.platform.stack import airflow, moto, websocket
from include.platform.stack.service import StackConfig, StackError, find_java, secret

LAKE_BUCKET = "dataplatform-lake"


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


def lake_uri(cfg: StackConfig) -> str:
    if cfg.lake == "s3":
        return f"s3a://{LAKE_BUCKET}/lake"
    if cfg.lake == "file":
        return cfg.lake_dir.as_uri()
    raise StackError(f"DP_LAKE must be 's3' (the embedded moto) or 'file' (a local folder), not {cfg.lake!r}")


def spark_defaults(cfg: StackConfig) -> dict[str, str]:
    """``spark-defaults.conf`` of local applications: the pinned jars and s3a:// on moto.

    The docker-compose image has the same file for MinIO (docker/spark/spark-defaults.conf);
    on EMR, EMRFS serves s3:// and the jars come with the step (--jars).
    """
    try:
        jars = jvm.spark_jars()
    except jvm.JarsError as exc:
        raise StackError(str(exc)) from None
    return {
        "spark.jars": jars,
        "spark.sql.session.timeZone": "UTC",
        "spark.hadoop.fs.s3a.endpoint": moto.endpoint(cfg),
        "spark.hadoop.fs.s3a.endpoint.region": moto.REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        # moto's dummy keys (not secrets: moto accepts any key and never reaches AWS)
        "spark.hadoop.fs.s3a.access.key": moto.ACCESS_KEY,
        "spark.hadoop.fs.s3a.secret.key": moto.ACCESS_KEY,
        # moto answers without the ETag/version checks real S3 gives (Hadoop's third-party stores doc)
        "spark.hadoop.fs.s3a.change.detection.mode": "none",
    }


def write_spark_conf(cfg: StackConfig) -> Path:
    """``$DP_HOME/spark-conf/spark-defaults.conf`` (SPARK_CONF_DIR of the stack's processes)."""
    cfg.spark_conf_dir.mkdir(parents=True, exist_ok=True)
    text = "# Written by `dp up` (include/platform/stack/environment.py).\n" + "".join(
        f"{key} {value}\n" for key, value in spark_defaults(cfg).items())
    (cfg.spark_conf_dir / "spark-defaults.conf").write_text(text)
    return cfg.spark_conf_dir


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def stack_environment(cfg: StackConfig, results_db_url: str, metadata_url: str) -> dict[str, str]:
    """Every variable the stack's processes (and the user's shell) need."""
    venv_bin = Path(sys.executable).parent
    endpoint = moto.endpoint(cfg)
    aws_extra = {"endpoint_url": endpoint, "region_name": moto.REGION}
    env = {
        "DP_HOME": str(cfg.home),
        "DP_RUNNER": "local",
        "DP_LAKE_URI": lake_uri(cfg),
        "DP_KAFKA_BOOTSTRAP": f"127.0.0.1:{cfg.kafka_port}",
        # The embedded Cassandra node (native protocol, cassandra-driver).
        "DP_CASSANDRA_CONTACT_POINTS": "127.0.0.1",
        "DP_CASSANDRA_PORT": str(cfg.cassandra_port),
        # The platform's WebSocket service (include/platform/stack/websocket.py).
        "DP_WEBSOCKET_URL": websocket.url(cfg),
        # What spark-submit'ed jobs read (spark_apps/common/mysql.py); Airflow tasks pass the
        # connection's URL themselves.
        "DP_RESULTS_DB_URL": results_db_url,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        # Spark's Python workers must use the platform's interpreter and packages.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_DRIVER_MEMORY": local_spark_driver_memory(),
        # The supervised streaming jobs' heap (Settings.spark_streaming_driver_memory): their state
        # and micro-batches are small, and eight at the batch jobs' heap overcommitted the RAM.
        "DP_SPARK_STREAMING_DRIVER_MEMORY": "1g",
        # The energy pipeline on a demo timeline: the join's output is final only once both
        # watermarks have passed a reading's weather range, which with the production defaults
        # (15-minute readings, 30-minute watermarks, weather up to 60 minutes before) is ~90
        # minutes after the reading, so a demo would show no joined row for its first hour and a
        # half. One-minute readings (600 households: 10 a second), 10-minute watermarks (the
        # minute the readings are spread over plus the producer's 5-minute late ones) and weather
        # within [-10, +2] minutes (the replayed weather arrives every 5 s) bring the first
        # joined rows, and the analysis on them, ~25 minutes after `make demo`. On AWS these are
        # unset: the defaults in include/streaming/energy_jobs.py apply.
        "DP_ENERGY_INTERVAL_MINUTES": "1",
        "DP_ENERGY_HOUSEHOLDS": "600",
        "DP_ENERGY_READINGS_WATERMARK": "10 minutes",
        "DP_ENERGY_WEATHER_WATERMARK": "10 minutes",
        "DP_ENERGY_WEATHER_BEFORE": "10 minutes",
        "DP_ENERGY_WEATHER_AFTER": "2 minutes",
        "SPARK_CONF_DIR": str(cfg.spark_conf_dir),
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Slots for task instances: the six continuous DAGs' supervised streaming jobs and their
        # producers hold one each for as long as they run (13 today), so 16 left the batch DAGs
        # and the health checks queued in the demo. A waiting slot costs a process, not a core.
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # A task parses its DAG file before it runs; with the whole stack on two cores (the
        # broker, Cassandra, the long-running Spark jobs) that parse took over Airflow's 30 s
        # default and the tasks failed with "DagBag import timeout" in the demo. The DAG files
        # do no I/O at parse time (tests/dags), so a longer limit only absorbs CPU contention.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__CORE__FERNET_KEY": secret(cfg, "fernet_key", _fernet_key),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{cfg.airflow_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{airflow.USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.passwords_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__API__BASE_URL": f"http://localhost:{cfg.airflow_port}",
        "AIRFLOW__API__SECRET_KEY": secret(cfg, "api_secret_key"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret(cfg, "jwt_secret"),
        "AIRFLOW__API__WORKERS": "1",
        # Connections by name; the same names point at real AWS/Kafka/MySQL by configuration.
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "login": moto.ACCESS_KEY, "password": moto.ACCESS_KEY, "extra": aws_extra}
        ),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": "local[2]", "extra": {"spark-binary": "spark-submit"}}
        ),
        # The supervised streaming jobs run for weeks, many at once (metrics A and B, weather,
        # turnstile, WebSocket ingest and stats, ...): one task thread each, so that together they
        # leave the two cores to the batch jobs instead of each asking for both (the demo ran at
        # load 25-35 with local[2] everywhere). Their micro-batches are small: one core is enough.
        "AIRFLOW_CONN_SPARK_STREAMING": json.dumps(
            {"conn_type": "spark", "host": "local[1]", "extra": {"spark-binary": "spark-submit"}}
        ),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{cfg.kafka_port}"}}
        ),
        "AIRFLOW_CONN_MYSQL_RESULTS": results_db_url,
        # FileSensor's base path: lake folders are given as absolute paths.
        "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}}),
        # boto3 used outside Airflow connections (CLI tools, tests) talks to moto too.
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": moto.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": moto.ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto.REGION,
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
