"""The embedded stack against real servers: it comes up, the bootstrap DAG runs green under
`airflow dags test`, and each fault stops it with one clear line and nothing left running."""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from stack_helpers import make_config

from include.platform import stack
from spark_apps.common.mysql import ResultsDb

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _airflow(env, *args, timeout=600):
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_env_file_is_private_and_complete(embedded_stack):
    cfg, env = embedded_stack
    assert oct(cfg.env_file.stat().st_mode & 0o777) == "0o600"
    assert oct(cfg.secrets_dir.stat().st_mode & 0o777) == "0o700"
    written = stack.read_env_file(cfg)
    for name in ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SPARK_DEFAULT", "AIRFLOW_CONN_KAFKA_DEFAULT",
                 "AIRFLOW_CONN_MYSQL_RESULTS", "AIRFLOW__CORE__LOAD_EXAMPLES", "PYSPARK_PYTHON"):
        assert written.get(name), name
    assert written["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    # pipelines use the least-privilege user, never root
    results = ResultsDb.from_url(written["AIRFLOW_CONN_MYSQL_RESULTS"])
    assert results.user == cfg.results_user != "root"
    conn = results.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    assert "ALL PRIVILEGES ON *.*" not in grants and "GRANT OPTION" not in grants


def test_up_is_idempotent(embedded_stack):
    cfg, _ = embedded_stack
    before = stack.status(cfg)
    started = []
    stack.up(cfg, with_airflow=False, echo=started.append)
    assert started == []
    assert stack.status(cfg) == before
    assert before["kafka"] and before["moto"]


def test_bootstrap_dag_runs_green(airflow_env):
    cfg, env = airflow_env
    run = _airflow(env, "dags", "test", "platform_bootstrap")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    secret = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"]).password
    assert secret not in run.stdout + run.stderr, "the results DB password leaked into the task output"

    # What the DAG made is really there, on the real servers.
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": env["DP_KAFKA_BOOTSTRAP"]}).list_topics(timeout=10).topics
    assert {"metric-message", "metric-protobuf", "metric-dead-letter"} <= set(topics)
    assert len(topics["metric-message"].partitions) == 3

    results = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"])
    conn = results.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'websocket_ingest_runs'")
            assert cur.fetchone()
    finally:
        conn.close()

    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"dataplatform-lake", "dataplatform-artifacts"} <= buckets

    # Idempotent: a second run is green too.
    again = _airflow(env, "dags", "test", "platform_bootstrap")
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]


# ----------------------------------------------------------------------------- faults


def _assert_nothing_running(cfg):
    assert all(pid is None for pid in stack.status(cfg).values()), stack.status(cfg)
    for port in (cfg.kafka_port, cfg.kafka_controller_port, cfg.moto_port):
        assert not stack.port_open(port)


@pytest.fixture
def private_cfg(tmp_path):
    cfg = make_config(tmp_path / "home")
    yield cfg
    stack.down(cfg, echo=lambda _: None)
    stack.drop_results_db(cfg)


def test_port_taken_stops_with_one_line_and_nothing_started(private_cfg):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", private_cfg.kafka_port))
    blocker.listen()
    try:
        with pytest.raises(stack.StackError) as err:
            stack.up(private_cfg, with_airflow=False, echo=lambda _: None)
    finally:
        blocker.close()
    message = str(err.value)
    assert "\n" not in message
    assert f"port {private_cfg.kafka_port}" in message and "DP_KAFKA_PORT" in message
    _assert_nothing_running(private_cfg)  # moto, started before the broker, was stopped again


def test_corrupt_broker_storage_stops_with_one_line_and_nothing_running(private_cfg):
    # A log directory formatted for another node (or damaged): the broker refuses it.
    from include.platform.stack import kafka

    data = kafka.data_dir(private_cfg)
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n")
    with pytest.raises(stack.StackError) as err:
        stack.up(private_cfg, with_airflow=False, echo=lambda _: None)
    message = str(err.value)
    assert "kafka" in message.lower() and "\n" not in message
    _assert_nothing_running(private_cfg)


def test_broker_keeps_topics_and_messages_across_restart(private_cfg):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    # The broker alone (the rest of the stack plays no part here).
    from include.platform.stack import kafka

    env = dict(os.environ)
    stack.start_service(private_cfg, kafka.service(private_cfg), env)
    bootstrap = f"127.0.0.1:{private_cfg.kafka_port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
    admin.create_topics([NewTopic("kept", 1, 1)])["kept"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce("kept", value=str(i).encode())
    assert producer.flush(30) == 0
    # Topics are created by platform_bootstrap only: producing to an unknown topic fails.
    errors = []
    impatient = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 3000})
    impatient.produce("never-created", value=b"x", on_delivery=lambda err, _m: errors.append(err))
    impatient.flush(15)
    assert errors and errors[0] is not None
    assert "never-created" not in admin.list_topics(timeout=10).topics

    assert stack.stop_service(private_cfg, "kafka")  # SIGTERM: a controlled shutdown
    stack.start_service(private_cfg, kafka.service(private_cfg), env)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart-check", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("kept", 0), timeout=30)
        assert (low, high) == (0, 10)
    finally:
        consumer.close()


def test_missing_java_is_reported(private_cfg, monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    with pytest.raises(stack.StackError, match="Java not found"):
        stack.up(private_cfg, with_airflow=False, echo=lambda _: None)
    _assert_nothing_running(private_cfg)


def test_wrong_admin_password_is_reported(private_cfg):
    cfg = dataclasses.replace(private_cfg, mysql_admin_url="mysql://root:definitely-wrong@127.0.0.1:3306/mysql")
    with pytest.raises(stack.StackError, match="rejected the admin login.*DP_MYSQL_ADMIN_URL"):
        stack.up(cfg, with_airflow=False, echo=lambda _: None)
    _assert_nothing_running(private_cfg)


def test_unreachable_mysql_is_reported(private_cfg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    cfg = dataclasses.replace(private_cfg, mysql_admin_url=f"mysql://root:@db.invalid:{dead_port}/mysql")
    with pytest.raises(stack.StackError, match="unreachable"):
        stack.up(cfg, with_airflow=False, echo=lambda _: None)
    _assert_nothing_running(private_cfg)


def test_cli_prints_one_line_on_failure(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
    env.update(DP_HOME=str(tmp_path), DP_MYSQL_ADMIN_URL="mysql://root:wrong@127.0.0.1:3306/mysql")
    out = subprocess.run([str(Path(sys.executable).parent / "dp"), "up"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
