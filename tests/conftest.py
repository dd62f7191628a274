"""Fixtures shared by the whole suite.

Real parts only: ``spark`` is a local Spark session with the platform's pinned jars,
``results_db`` is a fresh database on the MariaDB/MySQL server the platform uses (the
local MariaDB, installed and started when missing, administered as root through its unix
socket, unless DP_TEST_MYSQL_ADMIN_URL says otherwise), dropped after the test session.

Markers come from the fixtures (pytest_collection_modifyitems below): a test using a fixture
that starts Spark is ``spark``, one using a fixture that starts a server is ``stack``, so
``-m "not stack and not spark"`` is the fast unit run and ``-m "spark and not stack"`` the
Spark unit tests that `make test` also runs on Spark 4.0 (.venv-spark40).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Airflow reads its configuration at import time: give the suite its own throwaway
# AIRFLOW_HOME (never the user's stack) and turn the example DAGs off the Airflow 3.3
# way, through [core] load_examples.
_AIRFLOW_HOME = Path(os.environ.get("DP_TEST_AIRFLOW_HOME") or f"/tmp/dp-test-airflow-{os.getpid()}")
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
for _name in list(os.environ):
    # Never let a developer's sourced stack.env leak into the suite.
    if _name.startswith("AIRFLOW_CONN_") or _name.startswith("DP_") and not _name.startswith("DP_TEST_"):
        del os.environ[_name]


# Spark's Python workers must run the same interpreter (and packages) as the tests.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

# Fixtures (also used indirectly, through other fixtures) that start Spark: a session or spark-submit.
SPARK_FIXTURES = {"spark", "supervisor", "pipeline", "two_runs", "generated_run", "s3_lake"}
# Fixtures that start a server: MariaDB, the broker, moto, Cassandra, the embedded stack, Airflow's DB.
STACK_FIXTURES = {
    "results_server", "kafka_broker", "private_kafka_broker", "embedded_stack", "airflow_env", "cassandra_node",
    "moto_cfg", "node", "private_cfg", "admin", "emr_settings", "moto_server", "airflow_db",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SPARK_FIXTURES:
            item.add_marker(pytest.mark.spark)
        if used & STACK_FIXTURES:
            item.add_marker(pytest.mark.stack)


ADMIN_URL = os.environ.get("DP_TEST_MYSQL_ADMIN_URL") or "mysql://root@localhost/mysql?unix_socket=/run/mysqld/mysqld.sock"


@pytest.fixture(scope="session")
def results_server():
    """The local MariaDB, installed and started when missing (as `dp up` does), for scratch databases."""
    from include.platform.stack import StackConfig, mariadb

    mariadb.ensure_server(StackConfig(mysql_admin_url=ADMIN_URL))
    return ADMIN_URL


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    from include.platform.jvm import spark_jars

    session = (
        SparkSession.builder.master("local[2]")
        .appName("dataplatform-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        # The platform's pinned connector jars (Kafka, Avro, s3a), as every job gets them.
        .config("spark.jars", spark_jars())
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def results_db(results_server):
    """A throwaway database, reached with a least-privilege user like the pipelines use."""
    from include.platform.scratch_db import create_scratch_db, drop_scratch_db

    db = create_scratch_db(ADMIN_URL, "dp_test")
    yield db
    drop_scratch_db(ADMIN_URL, db)


@pytest.fixture
def fresh_results_db(results_server):
    """Like results_db, but one database per test: for tests that compare whole tables
    which other tests also write (e.g. the streaming aggregates)."""
    from include.platform.scratch_db import create_scratch_db, drop_scratch_db

    db = create_scratch_db(ADMIN_URL, "dp_test")
    yield db
    drop_scratch_db(ADMIN_URL, db)


@pytest.fixture(scope="session")
def airflow_db():
    """The suite's Airflow metadata DB (SQLite in its throwaway AIRFLOW_HOME), created once: for
    ``dag.test()`` in this process."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """The embedded stack's Apache Kafka broker (one KRaft node) on free ports, one for the whole
    session: the streaming pipelines' tests and the platform tools' (`dp kafka`) share it."""
    from tests.spark_apps.streaming.conftest import _start_broker, _stop_broker

    broker = _start_broker(tmp_path_factory.mktemp("kafka-home"))
    try:
        yield broker
    finally:
        _stop_broker(broker)


@pytest.fixture(scope="session")
def moto_server():
    """moto (the platform's AWS stand-in) in this process, on a free port: its endpoint URL.
    In process, so that a test can also play what moto leaves out (tests/stack/test_emr_path.py
    runs EMR steps through its backends)."""
    from moto.server import ThreadedMotoServer

    from include.platform.stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
