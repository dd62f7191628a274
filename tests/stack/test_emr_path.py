"""The EMR path, end to end against moto's EMR and S3 APIs: the platform's DAGs run with
``dag.test()`` (the real provider operators; sensors in reschedule mode are poked again),
while :class:`EmrPlayer` plays the part of EMR that moto leaves out, running the steps: it
moves each step to RUNNING and then to the outcome the test planned for it.

Step arguments are compared with hand-written lists, the connector jars with the `spark-4.0`
group of jvm/jars.sha256 written out here (emr-spark-8.0.0 runs Spark 4.0.2)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from include.platform import settings as platform_settings
from include.platform.runners import job_flow_overrides, spark_job_tasks
from include.platform.spark_jobs import SparkJob

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
JOBS = [
    SparkJob("job_one", "spark_apps/access_logs/job.py", ["--input", "s3://lake/raw/x", "--log-date", "2024-01-15"]),
    SparkJob("job_two", "spark_apps/access_logs/job.py", ["--top-n", "3"], conf={"spark.sql.shuffle.partitions": "8"}),
]
APPS = "s3://dataplatform-artifacts/spark_apps"
# The `spark-4.0` group of jvm/jars.sha256, written out here on purpose: the steps must name
# exactly these jars of the artifact (checked against the lock below).
SPARK40_JARS = (
    "commons-pool2-2.12.0.jar", "kafka-clients-3.9.1.jar", "spark-avro_2.13-4.0.2.jar",
    "spark-sql-kafka-0-10_2.13-4.0.2.jar", "spark-token-provider-kafka-0-10_2.13-4.0.0.jar",
)
JARS_ARG = ",".join(f"{APPS}/jars-spark-4.0/{name}" for name in SPARK40_JARS)
EXPECTED_STEP_ARGS = {
    "job_one": [
        "spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--py-files", f"{APPS}/spark_apps.zip",
        "--jars", JARS_ARG,
        "--name", "job_one",
        f"{APPS}/spark_apps/access_logs/job.py", "--input", "s3://lake/raw/x", "--log-date", "2024-01-15",
    ],
    "job_two": [
        "spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
        "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.sql.shuffle.partitions=8",
        "--py-files", f"{APPS}/spark_apps.zip",
        "--jars", JARS_ARG,
        "--name", "job_two",
        f"{APPS}/spark_apps/access_logs/job.py", "--top-n", "3",
    ],
}
LAKE = "s3://dataplatform-lake/lake"
MSK_BROKERS = "b-1.msk.example:9098,b-2.msk.example:9098"
# access_log_analysis run for 2024-06-02 analyses the day before.
ACCESS_LOG_STEP_ARGS = [
    "spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
    "--conf", "spark.sql.session.timeZone=UTC",
    "--py-files", f"{APPS}/spark_apps.zip",
    "--jars", JARS_ARG,
    "--name", "access_log_analysis",
    f"{APPS}/spark_apps/access_logs/job.py",
    "--input", f"{LAKE}/raw/access_logs/date=2024-06-01",
    "--log-date", "2024-06-01",
    "--summary-uri", f"{LAKE}/reports/access_logs",
    "--quarantine-uri", f"{LAKE}/quarantine/access_logs",
    "--top-n", "10",
]


def test_expected_jars_are_the_locks_spark_40_group():
    lines = [line.split() for line in (ROOT / "jvm" / "jars.sha256").read_text().splitlines()]
    pinned = sorted(words[1] for words in lines if words and words[0] == "spark-4.0")
    assert list(SPARK40_JARS) == pinned, "jvm/jars.sha256 changed: update SPARK40_JARS in this test"


def test_the_default_release_runs_spark_4_0_and_older_ones_are_refused(monkeypatch):
    monkeypatch.setenv("DP_RUNNER", "emr")
    settings = platform_settings.load()
    assert (settings.emr_release, settings.emr_spark_line) == ("emr-spark-8.0.0", "4.0")
    monkeypatch.setenv("DP_EMR_RELEASE", "emr-7.9.0")  # Spark 3.5, Python 3.9
    with pytest.raises(ValueError, match="Spark 4.0"):
        platform_settings.load()


def test_emr_steps_pass_the_artifacts_spark_40_jars(monkeypatch):
    """The rendering alone (no AWS API): DAG files do this at parse time."""
    monkeypatch.setenv("DP_RUNNER", "emr")
    settings = platform_settings.load()
    assert settings.spark_apps_uri == APPS
    for job in JOBS:
        assert job.emr_step(settings)["HadoopJarStep"]["Args"] == EXPECTED_STEP_ARGS[job.name]


def test_emr_step_and_local_spark_submit_carry_the_same_arguments(monkeypatch):
    """One job definition: the provider's rendered spark-submit and the EMR step differ only
    in the artifact root, in --master/--deploy-mode and in --jars (local applications get
    their jars through spark.jars in their Spark configuration)."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    monkeypatch.setenv("DP_RUNNER", "emr")
    settings = platform_settings.load()
    local = dataclasses.replace(settings, runner="local", spark_apps_uri="file:///opt/build")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    for job in JOBS:
        op = job.local_operator(local)
        hook = SparkSubmitHook(conf=op.conf, conn_id=op._conn_id, py_files=op.py_files, name=op.name,
                               application_args=op.application_args)
        command = hook._build_spark_submit_command(op.application)
        assert command[:3] == ["spark-submit", "--master", "local[2]"]
        assert "--jars" not in command
        step_args = EXPECTED_STEP_ARGS[job.name]
        jars_at = step_args.index("--jars")
        without_jars = step_args[5:jars_at] + step_args[jars_at + 2:]
        assert [a.replace("file:///opt/build", "ROOT") for a in command[3:]] == [
            a.replace(APPS, "ROOT") for a in without_jars
        ]


def test_cluster_configuration_comes_from_settings(monkeypatch):
    for name, value in {
        "DP_RUNNER": "emr", "DP_EMR_INSTANCE_TYPE": "m5.2xlarge", "DP_EMR_CORE_INSTANCES": "3",
        "DP_EMR_IDLE_TIMEOUT_S": "1800", "DP_EMR_STEP_CONCURRENCY": "2", "DP_AWS_REGION": "eu-west-1",
        "DP_EMR_SERVICE_ROLE": "EMR_DefaultRole_V2", "DP_EMR_JOB_FLOW_ROLE": "dp-emr-instance",
        "DP_EMR_SUBNET_ID": "subnet-0abc", "DP_EMR_PRIMARY_SECURITY_GROUP": "sg-1",
        "DP_EMR_CORE_SECURITY_GROUP": "sg-2", "DP_EMR_SERVICE_ACCESS_SECURITY_GROUP": "sg-3",
    }.items():
        monkeypatch.setenv(name, value)
    config = job_flow_overrides(platform_settings.load(), "c")
    assert config["ReleaseLabel"] == "emr-spark-8.0.0"
    assert (config["ServiceRole"], config["JobFlowRole"]) == ("EMR_DefaultRole_V2", "dp-emr-instance")
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in config["Tags"]
    instances = config["Instances"]
    assert (instances["Ec2SubnetId"], instances["EmrManagedMasterSecurityGroup"], instances["EmrManagedSlaveSecurityGroup"],
            instances["ServiceAccessSecurityGroup"]) == ("subnet-0abc", "sg-1", "sg-2", "sg-3")
    assert [g["InstanceCount"] for g in instances["InstanceGroups"]] == [1, 3]
    assert config["AutoTerminationPolicy"] == {"IdleTimeout": 1800} and config["StepConcurrencyLevel"] == 2
    [env] = config["Configurations"][0]["Configurations"]
    assert env["Properties"] == {"DP_RESULTS_DB_SECRET_ID": "dataplatform/results-db", "AWS_DEFAULT_REGION": "eu-west-1",
                                 "PYSPARK_PYTHON": "/usr/bin/python3.11"}
    defaults = config["Configurations"][1]["Properties"]
    assert defaults["spark.pyspark.python"] == "/usr/bin/python3.11"
    for prefix in ("spark.yarn.appMasterEnv", "spark.executorEnv"):
        assert defaults[f"{prefix}.AWS_DEFAULT_REGION"] == "eu-west-1"
    assert config["BootstrapActions"][0]["ScriptBootstrapAction"] == {
        "Path": f"{APPS}/bootstrap/install_python_deps.sh", "Args": [f"{APPS}/bootstrap", "/usr/bin/python3.11"]}
    # the results-DB secret travels by name only
    assert "password" not in json.dumps(config).lower()
    # without network settings EMR picks its defaults: no empty ids are sent
    monkeypatch.delenv("DP_EMR_SUBNET_ID")
    assert "Ec2SubnetId" not in job_flow_overrides(platform_settings.load(), "c")["Instances"]


def test_task_shapes_retries_timeout_and_teardown(monkeypatch):
    from airflow.sdk import DAG

    monkeypatch.setenv("DP_RUNNER", "emr")
    monkeypatch.setenv("DP_EMR_STEP_TIMEOUT_S", "7200")
    monkeypatch.setenv("DP_EMR_POLL_INTERVAL_S", "30")
    settings = platform_settings.load()
    with DAG("emr_shape", schedule=None, catchup=False) as dag:
        spark_job_tasks(JOBS, settings, cluster_name="c")
    with DAG("emr_reuse", schedule=None, catchup=False) as reuse:
        spark_job_tasks(JOBS[:1], dataclasses.replace(settings, emr_cluster_id="j-X"), cluster_name="c2",
                        step_timeout_s=86400)
    create, terminate = dag.get_task("create_emr_cluster"), dag.get_task("terminate_emr_cluster")
    assert create.retries == 0 and all(dag.get_task(f"{j.name}_add_step").retries == 0 for j in JOBS)
    assert terminate.is_teardown and create.task_id in terminate.upstream_task_ids
    assert {"job_one", "job_two"} <= terminate.upstream_task_ids
    sensor = dag.get_task("job_one")
    assert (sensor.mode, sensor.poke_interval, sensor.timeout) == ("reschedule", 30, 7200)
    # a DAG's own timeout; a given cluster is neither created nor terminated
    assert reuse.get_task("job_one").timeout == 86400
    assert not {"create_emr_cluster", "terminate_emr_cluster"} & set(reuse.task_ids)
    assert reuse.get_task("job_one_add_step").job_flow_id == "j-X"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """`dp build`'s artifact (bundle, bootstrap, jars of both Spark lines) in a folder of its own."""
    from include.platform.spark_jobs import build_bundle

    out = tmp_path_factory.mktemp("emr-build")
    build_bundle(out)
    return out


def _emr_backend():
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    return get_backend("emr")[DEFAULT_ACCOUNT_ID][REGION]


class EmrPlayer:
    """EMR's step execution, which moto does not do: each PENDING step is started when the
    cluster has a free step slot (StepConcurrencyLevel), then ends as planned: ``plan`` maps a
    step name to the outcomes of its first, second, ... submission (default COMPLETED).
    A step planned "HOLD" stays RUNNING until the cluster's steps have been listed by state
    once (an operator deciding whether to re-attach), then completes."""

    def __init__(self, plan: dict[str, list[str]] | None = None):
        self.plan = plan or {}
        self.submissions: dict[str, int] = {}
        self.outcome: dict[str, str] = {}
        self.steps_listed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for cluster in list(_emr_backend().clusters.values()):
                if cluster.state in ("TERMINATING", "TERMINATED"):
                    continue
                running = [s for s in cluster.steps if s.state == "RUNNING"]
                for step in cluster.steps:
                    if step.state == "PENDING" and len(running) < cluster.step_concurrency_level:
                        step.state = "RUNNING"
                        running.append(step)
                for step in running:
                    if step.id not in self.outcome:  # first seen running: decide, end it next round
                        n = self.submissions.get(step.name, 0)
                        self.submissions[step.name] = n + 1
                        plan = self.plan.get(step.name, [])
                        self.outcome[step.id] = plan[n] if n < len(plan) else "COMPLETED"
                        continue
                    if self.outcome[step.id] == "HOLD" and not self.steps_listed.is_set():
                        continue
                    step.state = "COMPLETED" if self.outcome[step.id] == "HOLD" else self.outcome[step.id]
                    step.end_date_time = datetime.now(timezone.utc)
            time.sleep(0.3)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def emr_env(moto_server, artifact, airflow_db, monkeypatch):
    """The EMR runner against moto: the AWS connection, an artifact bucket, a fast poll."""
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"endpoint_url": moto_server, "region_name": REGION}}
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        # Streaming steps render the brokers from the Kafka connection (an MSK cluster, say).
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": MSK_BROKERS}}),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        "DP_RUNNER": "emr", "DP_EMR_POLL_INTERVAL_S": "1", "DP_LAKE_URI": LAKE,
        "DP_SPARK_APPS_LOCAL_DIR": str(artifact),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    s3.create_bucket(Bucket="dataplatform-artifacts")
    return boto3.client("emr", endpoint_url=moto_server, region_name=REGION)


def _load_dag(relative: str):
    """A DAG file imported afresh, so that it reads the settings of this test."""
    path = ROOT / "dags" / relative
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _clusters(emr, name: str) -> list[dict]:
    return [c for c in emr.list_clusters()["Clusters"] if c["Name"] == name]


def _steps(emr, cluster_id: str) -> list[dict]:
    return list(reversed(emr.list_steps(ClusterId=cluster_id)["Steps"]))  # oldest first


LOGICAL_DATE = datetime(2024, 6, 2, tzinfo=timezone.utc)


def test_batch_dag_creates_a_cluster_runs_its_step_and_terminates_it(emr_env):
    emr = emr_env
    dag = _load_dag("access_logs/access_log_analysis.py")
    with EmrPlayer():
        run = dag.test(logical_date=LOGICAL_DATE, mark_success_pattern="wait_for_day_folder")
    assert run.state == "success", _states(run)
    [cluster] = _clusters(emr, "dataplatform-access-logs-2024-06-01")
    assert cluster["Status"]["State"] == "TERMINATED"
    described = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
    assert described["ReleaseLabel"] == "emr-spark-8.0.0"
    [step] = _steps(emr, cluster["Id"])
    assert step["Status"]["State"] == "COMPLETED"
    assert step["Config"]["Args"] == ACCESS_LOG_STEP_ARGS
    keys = {o["Key"] for o in boto3.client("s3", region_name=REGION, endpoint_url=emr.meta.endpoint_url)
            .list_objects_v2(Bucket="dataplatform-artifacts", Prefix="spark_apps/")["Contents"]}
    # every jar the step names is in the bucket, where --jars looks for it
    assert {f"spark_apps/jars-spark-4.0/{name}" for name in SPARK40_JARS} <= keys
    assert not any(k.startswith("spark_apps/jars/") for k in keys), "Spark 4.2's jars are for local runs"
    assert {"spark_apps/spark_apps.zip", "spark_apps/bootstrap/install_python_deps.sh",
            "spark_apps/bootstrap/requirements.txt", "spark_apps/bootstrap/constraints.txt"} <= keys


def test_a_failing_step_fails_the_run_and_the_cluster_is_terminated(emr_env):
    emr = emr_env
    dag = _load_dag("access_logs/access_log_analysis.py")
    # The sensor's retry (DEFAULT_ARGS: one, after a minute) finds the same FAILED step; not a minute here.
    dag.get_task("access_log_analysis").retry_delay = timedelta(seconds=1)
    with EmrPlayer({"access_log_analysis": ["FAILED"]}):
        run = dag.test(logical_date=datetime(2024, 6, 3, tzinfo=timezone.utc), mark_success_pattern="wait_for_day_folder")
    states = _states(run)
    assert run.state == "failed", states
    assert states["access_log_analysis"] == "failed" and states["terminate_emr_cluster"] == "success"
    [cluster] = _clusters(emr, "dataplatform-access-logs-2024-06-02")
    assert cluster["Status"]["State"] == "TERMINATED"
    assert [s["Status"]["State"] for s in _steps(emr, cluster["Id"])] == ["FAILED"]


def test_a_failed_creation_skips_the_teardown_instead_of_failing_it(emr_env, monkeypatch):
    from moto.emr.exceptions import ValidationException
    from moto.emr.models import ElasticMapReduceBackend

    def refuse(*args, **kwargs):
        raise ValidationException("Instance type is not supported in this Availability Zone")

    monkeypatch.setattr(ElasticMapReduceBackend, "run_job_flow", refuse)
    dag = _load_dag("access_logs/access_log_analysis.py")
    run = dag.test(logical_date=datetime(2024, 6, 4, tzinfo=timezone.utc), mark_success_pattern="wait_for_day_folder")
    states = _states(run)
    assert run.state == "failed"
    assert states["create_emr_cluster"] == "failed"
    assert states["terminate_emr_cluster"] != "failed", states  # not called with job_flow_id="None"


@pytest.mark.timeout(300)  # a retry that never succeeds would otherwise loop through the DAG's 1000 retries
def test_streaming_retry_resubmits_the_job_through_airflow(emr_env):
    """The job's step dies: the task fails, Airflow retries it, and the retry adds a fresh step
    (which resumes from the checkpoint) on the same cluster, created with a slot per job + 1."""
    emr = emr_env
    dag = _load_dag("streaming/weather_streaming.py")
    dag.get_task("weather_streaming").retry_delay = timedelta(seconds=1)  # the DAG's 20 s, shortened for the test
    with EmrPlayer({"weather_streaming": ["FAILED", "COMPLETED"]}):
        run = dag.test(mark_success_pattern="produce_weather")
    assert run.state == "success", _states(run)
    [cluster] = _clusters(emr, "dataplatform-weather-streaming")
    assert emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]["StepConcurrencyLevel"] == 2
    steps = _steps(emr, cluster["Id"])
    assert [(s["Name"], s["Status"]["State"]) for s in steps] == [("weather_streaming", "FAILED"),
                                                                  ("weather_streaming", "COMPLETED")]
    assert steps[0]["Config"]["Args"] == steps[1]["Config"]["Args"]
    args = steps[0]["Config"]["Args"]
    assert args[args.index("--bootstrap") + 1] == MSK_BROKERS
    assert cluster["Status"]["State"] == "TERMINATED"


def test_a_retried_streaming_task_reattaches_to_its_live_step(emr_env):
    """A step of the job's name still RUNNING (the task's worker was lost, say): the task's next
    try waits for that step and adds no second one on the same checkpoint."""
    from include.platform.operators import ReattachingEmrAddStepsOperator

    emr = emr_env
    settings = platform_settings.load()
    cluster_id = emr.run_job_flow(**job_flow_overrides(settings, "long-running", step_concurrency=3))["JobFlowId"]
    steps = [JOBS[0].emr_step(settings)]
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps)
    task = ReattachingEmrAddStepsOperator(task_id="job_one", job_flow_id=cluster_id, steps=steps, wait_for_completion=True,
                                          waiter_delay=1, waiter_max_attempts=600)
    [live] = task.live_steps(cluster_id)
    with EmrPlayer():
        assert task.execute({}) == [live]
    assert [s["Status"]["State"] for s in _steps(emr, cluster_id)] == ["COMPLETED"]
    emr.terminate_job_flows(JobFlowIds=[cluster_id])


def test_health_totals_run_on_the_streaming_cluster_not_a_new_one(emr_env):
    emr = emr_env
    settings = platform_settings.load()
    streaming = emr.run_job_flow(**job_flow_overrides(settings, "dataplatform-metrics-streaming", 3))["JobFlowId"]
    before = {c["Id"] for c in emr.list_clusters()["Clusters"]}
    dag = _load_dag("streaming/metrics_streaming_health.py")
    assert "create_emr_cluster" not in dag.task_ids and "terminate_emr_cluster" not in dag.task_ids
    with EmrPlayer():
        run = dag.test(mark_success_pattern="check_streaming_health")
    assert run.state == "success", _states(run)
    assert {c["Id"] for c in emr.list_clusters()["Clusters"]} == before
    assert [(s["Name"], s["Status"]["State"]) for s in _steps(emr, streaming)] == [("metrics_server_totals", "COMPLETED")]
    # left running for the streaming steps (moto keeps a cluster that had steps RUNNING)
    assert emr.describe_cluster(ClusterId=streaming)["Cluster"]["Status"]["State"] in ("RUNNING", "WAITING")
    emr.terminate_job_flows(JobFlowIds=[streaming])


def test_landing_into_an_s3_lake_on_moto(emr_env, tmp_path):
    """air_quality_land with an s3:// lake: exports converted locally, uploaded with their layout."""
    from include.generators.air_quality import generate

    path = ROOT / "dags" / "air_quality" / "air_quality_land.py"
    spec = importlib.util.spec_from_file_location("air_quality_land_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    incoming = tmp_path / "incoming"
    generated = generate(incoming, rows=200, stations=2, seed=3)
    s3 = boto3.client("s3", endpoint_url=emr_env.meta.endpoint_url, region_name=REGION)
    s3.create_bucket(Bucket="lake-under-test")

    uploaded = module.dag.get_task("land_exports").python_callable(str(incoming), "s3://lake-under-test/lake/raw/air_quality")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="lake-under-test")["Contents"]}
    assert keys == {f"lake/raw/air_quality/{Path(f.path).name}" for f in generated.files}
    assert sorted(uploaded) == sorted(f"s3://lake-under-test/{k}" for k in keys)
