"""The EMR rendering of Spark jobs, against moto's EMR and S3 APIs (the embedded stack's
AWS stand-in): cluster configuration from settings, step arguments identical to the local
spark-submit (plus the connector jars of the artifact as --jars), and a cluster that is
always terminated."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import pytest

from include.platform import settings as platform_settings
from include.platform.runners import job_flow_overrides, spark_job_tasks
from include.platform.spark_jobs import SparkJob

ROOT = Path(__file__).resolve().parents[2]
JOBS = [
    SparkJob("job_one", "spark_apps/access_logs/job.py", ["--input", "s3://lake/raw/x", "--log-date", "2024-01-15"]),
    SparkJob("job_two", "spark_apps/access_logs/job.py", ["--top-n", "3"], conf={"spark.sql.shuffle.partitions": "8"}),
]
APPS = "s3://dataplatform-artifacts/spark_apps"
# The `spark` group of jvm/jars.sha256, written out here on purpose: the steps must name
# exactly these jars of the artifact (checked against the lock below).
SPARK_JARS = (
    "analyticsaccelerator-s3-1.3.1.jar", "annotations-2.35.4.jar", "apache-client-2.35.4.jar", "arns-2.35.4.jar",
    "auth-2.35.4.jar", "aws-core-2.35.4.jar", "aws-query-protocol-2.35.4.jar", "aws-xml-protocol-2.35.4.jar",
    "checksums-2.35.4.jar", "checksums-spi-2.35.4.jar", "commons-pool2-2.13.1.jar", "crt-core-2.35.4.jar",
    "endpoints-spi-2.35.4.jar", "eventstream-1.0.1.jar", "hadoop-aws-3.5.0.jar", "http-auth-2.35.4.jar",
    "http-auth-aws-2.35.4.jar", "http-auth-aws-eventstream-2.35.4.jar", "http-auth-spi-2.35.4.jar",
    "http-client-spi-2.35.4.jar", "identity-spi-2.35.4.jar", "json-utils-2.35.4.jar", "kafka-clients-3.9.2.jar",
    "metrics-spi-2.35.4.jar", "profiles-2.35.4.jar", "protocol-core-2.35.4.jar", "reactive-streams-1.0.4.jar",
    "regions-2.35.4.jar", "retries-2.35.4.jar", "retries-spi-2.35.4.jar", "s3-2.35.4.jar",
    "s3-transfer-manager-2.35.4.jar", "sdk-core-2.35.4.jar", "spark-avro_2.13-4.2.0.jar",
    "spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-token-provider-kafka-0-10_2.13-4.2.0.jar", "sts-2.35.4.jar",
    "third-party-jackson-core-2.35.4.jar", "utils-2.35.4.jar", "utils-lite-2.35.4.jar",
)
JARS_ARG = ",".join(f"{APPS}/jars/{name}" for name in SPARK_JARS)
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


def test_expected_jars_are_the_locks_spark_group():
    lines = [line.split() for line in (ROOT / "jvm" / "jars.sha256").read_text().splitlines()]
    pinned = sorted(words[1] for words in lines if words and words[0] == "spark")
    assert list(SPARK_JARS) == pinned, "jvm/jars.sha256 changed: update SPARK_JARS in this test"


def test_emr_steps_pass_the_artifacts_jars(monkeypatch):
    """The rendering alone (no AWS API): DAG files do this at parse time."""
    monkeypatch.setenv("DP_RUNNER", "emr")
    settings = platform_settings.load()
    assert settings.spark_apps_uri == APPS
    for job in JOBS:
        assert job.emr_step(settings)["HadoopJarStep"]["Args"] == EXPECTED_STEP_ARGS[job.name]


@pytest.fixture
def emr_settings(embedded_stack, monkeypatch):
    cfg, env = embedded_stack
    for key in ("AIRFLOW_CONN_AWS_DEFAULT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("DP_RUNNER", "emr")
    monkeypatch.setenv("DP_EMR_RELEASE", "emr-7.9.0")
    monkeypatch.setenv("DP_EMR_INSTANCE_TYPE", "m5.2xlarge")
    monkeypatch.setenv("DP_EMR_CORE_INSTANCES", "3")
    monkeypatch.setenv("DP_EMR_IDLE_TIMEOUT_S", "1800")
    monkeypatch.setenv("DP_EMR_STEP_CONCURRENCY", "2")
    settings = platform_settings.load()
    assert settings.spark_apps_uri == "s3://dataplatform-artifacts/spark_apps"
    return settings, env


def _emr(env):
    return boto3.client("emr", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")


def test_cluster_configuration_and_steps_on_moto(emr_settings):
    settings, env = emr_settings
    emr = _emr(env)
    cluster_id = emr.run_job_flow(**job_flow_overrides(settings, "dataplatform-test"))["JobFlowId"]
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.9.0"
    assert cluster["LogUri"].startswith("s3://dataplatform-artifacts/emr-logs")
    assert cluster["StepConcurrencyLevel"] == 2
    groups = {g["InstanceGroupType"]: g for g in emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]}
    assert groups["CORE"]["InstanceType"] == "m5.2xlarge" and groups["CORE"]["RequestedInstanceCount"] == 3
    policy = job_flow_overrides(settings, "x")["AutoTerminationPolicy"]
    assert policy == {"IdleTimeout": 1800}
    # the results-DB secret travels by name only
    assert "password" not in json.dumps(job_flow_overrides(settings, "x")).lower()

    step_ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[job.emr_step(settings) for job in JOBS])["StepIds"]
    for job, step_id in zip(JOBS, step_ids):
        step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
        assert step["Config"]["Jar"] == "command-runner.jar"
        assert step["Config"]["Args"] == EXPECTED_STEP_ARGS[job.name]

    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] in ("TERMINATING", "TERMINATED")


def test_emr_step_and_local_spark_submit_carry_the_same_arguments(emr_settings, monkeypatch):
    """One job definition: the provider's rendered spark-submit and the EMR step differ only
    in the artifact root, in --master/--deploy-mode and in --jars (local applications get
    the same jars through spark.jars in their Spark configuration)."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    settings, env = emr_settings
    local = dataclasses.replace(settings, runner="local", spark_apps_uri="file:///opt/build")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    for job in JOBS:
        op = job.local_operator(local)
        hook = SparkSubmitHook(
            conf=op.conf, conn_id=op._conn_id, py_files=op.py_files, name=op.name,
            application_args=op.application_args,
        )
        command = hook._build_spark_submit_command(op.application)
        assert command[:3] == ["spark-submit", "--master", "local[2]"]
        assert "--jars" not in command
        step_args = job.emr_step(settings)["HadoopJarStep"]["Args"]
        assert step_args[:5] == ["spark-submit", "--master", "yarn", "--deploy-mode", "cluster"]
        jars_at = step_args.index("--jars")
        assert step_args[jars_at + 1] == JARS_ARG
        without_jars = step_args[5:jars_at] + step_args[jars_at + 2:]
        assert [a.replace("file:///opt/build", "ROOT") for a in command[3:]] == [
            a.replace("s3://dataplatform-artifacts/spark_apps", "ROOT") for a in without_jars
        ]


def test_cluster_is_terminated_even_when_a_step_fails(emr_settings):
    from airflow.sdk import DAG
    from airflow.task.trigger_rule import TriggerRule

    settings, _ = emr_settings
    with DAG("emr_shape", schedule=None, catchup=False) as dag:
        spark_job_tasks(JOBS, settings, cluster_name="c")
    terminate = dag.get_task("terminate_emr_cluster")
    guard = dag.get_task("steps_succeeded")
    assert terminate.trigger_rule == TriggerRule.ALL_DONE
    assert {"job_one", "job_two"} <= terminate.upstream_task_ids
    # terminate alone would turn a failed run green; the guard fails it
    assert guard.trigger_rule == TriggerRule.ONE_FAILED
    assert {"create_emr_cluster", "job_one", "job_two", "terminate_emr_cluster"} <= guard.upstream_task_ids
    assert all(dag.get_task(j.name).deferrable for j in JOBS)

    # Reusing a cluster: no create, no terminate.
    reuse = dataclasses.replace(settings, emr_cluster_id="j-EXISTING")
    with DAG("emr_reuse", schedule=None, catchup=False) as dag2:
        spark_job_tasks(JOBS, reuse, cluster_name="c")
    assert "create_emr_cluster" not in dag2.task_ids and "terminate_emr_cluster" not in dag2.task_ids
    assert dag2.get_task("job_one_add_step").job_flow_id == "j-EXISTING"


def test_upload_and_create_operators_run_against_moto(emr_settings, tmp_path):
    """The real provider operators, executed against moto: artifact upload, cluster creation,
    steps, termination."""
    from airflow.sdk import DAG

    from include.platform.spark_jobs import build_bundle

    settings, env = emr_settings
    build_bundle(tmp_path / "build")
    settings = dataclasses.replace(settings, spark_apps_local_dir=str(tmp_path / "build"))
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.create_bucket(Bucket="dataplatform-artifacts")
    with DAG("emr_run", schedule=None, catchup=False) as dag:
        spark_job_tasks(JOBS[:1], settings, cluster_name="dataplatform-run")

    class _TI:  # the operators only push/pull XComs and links through it
        xcoms: dict = {}

        def xcom_push(self, key, value, **_):
            self.xcoms[key] = value

        def xcom_pull(self, task_ids=None, key="return_value", **_):
            return self.xcoms.get(task_ids)

    ti = _TI()
    context = {"ti": ti, "task_instance": ti}
    upload = dag.get_task("upload_spark_apps")
    # an artifact without the jars the steps name is refused before anything is uploaded
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "spark_apps.zip").write_bytes((tmp_path / "build" / "spark_apps.zip").read_bytes())
    with pytest.raises(FileNotFoundError, match="spark jars of jvm/jars.sha256"):
        upload.python_callable(str(bare), settings.spark_apps_uri)
    upload.python_callable(settings.spark_apps_local_dir, settings.spark_apps_uri)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dataplatform-artifacts", Prefix="spark_apps/")["Contents"]}
    assert {"spark_apps/spark_apps.zip", "spark_apps/spark_apps/access_logs/job.py",
            "spark_apps/bootstrap/install_python_deps.sh", "spark_apps/jars/MANIFEST"} <= keys
    # every jar the steps name is in the bucket, where --jars looks for it
    assert {f"{APPS}/jars/{name}" for name in SPARK_JARS} <= {f"s3://dataplatform-artifacts/{k}" for k in keys}
    assert (tmp_path / "build" / "jars" / "MANIFEST").read_text().split() == list(SPARK_JARS)

    cluster_id = dag.get_task("create_emr_cluster").execute(context)
    assert cluster_id.startswith("j-")
    add = dag.get_task("job_one_add_step")
    add.job_flow_id = cluster_id
    step_ids = add.execute(context)
    step = _emr(env).describe_step(ClusterId=cluster_id, StepId=step_ids[0])["Step"]
    assert step["Config"]["Args"] == EXPECTED_STEP_ARGS["job_one"]
    terminate = dag.get_task("terminate_emr_cluster")
    terminate.job_flow_id = cluster_id
    terminate.execute(context)
    assert _emr(env).describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] in ("TERMINATING", "TERMINATED")


def test_landing_into_an_s3_lake_on_moto(emr_settings, tmp_path):
    """air_quality_land with an s3:// lake: exports converted locally, uploaded with their layout."""
    import importlib.util
    from pathlib import Path

    from include.generators.air_quality import generate

    settings, env = emr_settings
    path = Path(__file__).resolve().parents[2] / "dags" / "air_quality" / "air_quality_land.py"
    spec = importlib.util.spec_from_file_location("air_quality_land_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    incoming = tmp_path / "incoming"
    generated = generate(incoming, rows=200, stations=2, seed=3)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.create_bucket(Bucket="lake-under-test")

    uploaded = module.dag.get_task("land_exports").python_callable(str(incoming), "s3://lake-under-test/lake/raw/air_quality")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="lake-under-test")["Contents"]}
    assert keys == {f"lake/raw/air_quality/{Path(f.path).name}" for f in generated.files}
    assert sorted(uploaded) == sorted(f"s3://lake-under-test/{k}" for k in keys)


def test_long_running_jobs_are_resubmitted_by_their_task_retry_on_moto(emr_settings):
    """Streaming jobs on EMR: one deferrable add-step task per job, so that a retry of the
    task (after the step failed) adds a fresh step instead of re-reading the failed one."""
    from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
    from airflow.providers.amazon.aws.triggers.emr import EmrAddStepsTrigger
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import TaskDeferred

    settings, env = emr_settings
    with DAG("emr_streaming", schedule=None, catchup=False) as dag:
        spark_job_tasks(JOBS, settings, cluster_name="c", chain_jobs=False, long_running=True)
    assert not any(t.endswith("_add_step") for t in dag.task_ids)
    task = dag.get_task("job_one")
    assert isinstance(task, EmrAddStepsOperator) and task.deferrable
    assert task.waiter_delay * task.waiter_max_attempts > 10 * 365 * 24 * 3600  # waits "forever"
    assert {"job_one", "job_two"} <= dag.get_task("terminate_emr_cluster").upstream_task_ids

    emr = _emr(env)
    cluster_id = emr.run_job_flow(**job_flow_overrides(settings, "dataplatform-streaming"))["JobFlowId"]
    task.job_flow_id = cluster_id

    class _TI:
        def xcom_push(self, *args, **kwargs):
            pass

    submitted = []
    for _attempt in range(2):  # first try, then the retry after the step died
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({"ti": _TI(), "task_instance": _TI()})
        assert isinstance(deferred.value.trigger, EmrAddStepsTrigger)
        submitted += deferred.value.trigger.serialize()[1]["step_ids"]
    assert len(set(submitted)) == 2
    args = [emr.describe_step(ClusterId=cluster_id, StepId=s)["Step"]["Config"]["Args"] for s in submitted]
    assert args[0] == args[1] == JOBS[0].emr_step(settings)["HadoopJarStep"]["Args"]
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
