"""Turn SparkJob definitions into Airflow tasks for the configured runner.

``DP_RUNNER=local``: one SparkSubmitOperator per job on ``spark_default`` (local[2]
in the embedded stack, spark://spark-master:7077 in docker-compose).

``DP_RUNNER=emr``: upload the artifact (bundle, entry files, bootstrap script, the
connector jars the steps pass as ``--jars``) to S3, create a cluster (or reuse
``DP_EMR_CLUSTER_ID``), add one step per job and wait with a deferrable EmrStepSensor,
then always terminate the cluster we created, also when a step failed. Because the
terminate task runs on ALL_DONE and would make the run look green, a final
``steps_succeeded`` task (ONE_FAILED) fails the run when any step failed.
"""
from __future__ import annotations

from typing import Sequence

from include.platform.settings import Settings
from include.platform.spark_jobs import SparkJob


def job_flow_overrides(settings: Settings, name: str) -> dict:
    """EMR cluster configuration, every knob from settings (release, instances, logs, idle timeout)."""
    secret_env = {"DP_RESULTS_DB_SECRET_ID": settings.emr_results_db_secret_id}
    apps = settings.spark_apps_uri.rstrip("/")
    return {
        "Name": name,
        "ReleaseLabel": settings.emr_release,
        "Applications": [{"Name": "Spark"}],
        "LogUri": settings.emr_log_uri,
        "Instances": {
            "InstanceGroups": [
                {"Name": "primary", "Market": "ON_DEMAND", "InstanceRole": "MASTER",
                 "InstanceType": settings.emr_instance_type, "InstanceCount": 1},
                {"Name": "core", "Market": "ON_DEMAND", "InstanceRole": "CORE",
                 "InstanceType": settings.emr_instance_type, "InstanceCount": settings.emr_core_instance_count},
            ],
            # Steps are added by the DAG after creation; the DAG terminates the cluster.
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
        },
        # Safety net if the terminate task itself never runs (scheduler down, ...).
        "AutoTerminationPolicy": {"IdleTimeout": settings.emr_idle_timeout_s},
        "StepConcurrencyLevel": settings.emr_step_concurrency,
        "BootstrapActions": [
            {"Name": "python-deps",
             "ScriptBootstrapAction": {"Path": f"{apps}/bootstrap/install_python_deps.sh", "Args": []}},
        ],
        # Only the *name* of the results-DB secret travels; jobs fetch it from Secrets Manager.
        "Configurations": [
            {"Classification": "spark-env",
             "Configurations": [{"Classification": "export",
                                 "Properties": {**secret_env, "PYSPARK_PYTHON": "/usr/bin/python3"}}]},
            {"Classification": "spark-defaults",
             "Properties": {f"spark.yarn.appMasterEnv.{k}": v for k, v in secret_env.items()}
             | {f"spark.executorEnv.{k}": v for k, v in secret_env.items()}},
        ],
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "VisibleToAllUsers": True,
        "Tags": [{"Key": "project", "Value": "dataplatform"}],
    }


def spark_job_tasks(
    jobs: Sequence[SparkJob],
    settings: Settings,
    cluster_name: str,
    *,
    chain_jobs: bool = True,
    outlets: dict[str, list] | None = None,
    long_running: bool = False,
):
    """Create the tasks running ``jobs`` in the current DAG / TaskGroup.

    Returns ``(first, last)`` so the caller can wire them up. Jobs run one after the
    other when ``chain_jobs`` (the default: local[2] has two cores) else in parallel.
    ``outlets`` maps a job name to the Assets its task produces (on EMR: the step sensor,
    which succeeds only when the step did).

    ``long_running`` is for supervised streaming jobs, whose task retries must
    *resubmit* the job. Locally that is what a retried SparkSubmitOperator does. On EMR
    the usual add-step task + sensor pair cannot do it (a retried sensor only re-reads
    the failed step), so each job becomes one deferrable EmrAddStepsOperator that adds
    its step and waits for it: a retry adds a fresh step, which resumes from the
    query's checkpoint.
    """
    outlets = outlets or {}
    if settings.runner == "emr":
        return _emr_tasks(jobs, settings, cluster_name, chain_jobs, outlets, long_running)
    if settings.runner != "local":
        raise ValueError(f"DP_RUNNER must be 'local' or 'emr', not {settings.runner!r}")
    tasks = [job.local_operator(settings, outlets=outlets.get(job.name, [])) for job in jobs]
    if chain_jobs:
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream
        return tasks[0], tasks[-1]
    return tasks, tasks


# A streaming step runs for weeks: let the deferred add-step task wait (almost) forever.
LONG_RUNNING_POLL_S = 60
LONG_RUNNING_MAX_POLLS = 10**7


def _emr_tasks(jobs: Sequence[SparkJob], settings: Settings, cluster_name: str, chain_jobs: bool, outlets: dict,
               long_running: bool = False):
    from airflow.providers.amazon.aws.operators.emr import (
        EmrAddStepsOperator,
        EmrCreateJobFlowOperator,
        EmrTerminateJobFlowOperator,
    )
    from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
    from airflow.sdk import task
    from airflow.task.trigger_rule import TriggerRule

    @task(task_id="upload_spark_apps")
    def upload_spark_apps(local_dir: str, target_uri: str) -> str:
        from pathlib import Path

        from include.platform.jvm import pinned_jar_names
        from include.platform.s3_upload import upload_files
        from include.platform.spark_jobs import JARS_DIR, JARS_MANIFEST

        root = Path(local_dir)
        files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if not any(p.name == "spark_apps.zip" for p in files):
            raise FileNotFoundError(f"{root}/spark_apps.zip missing: run `dp build` first")
        # The steps name the jars from jvm/jars.sha256 (at parse time): the artifact must hold exactly those.
        manifest = root / JARS_DIR / JARS_MANIFEST
        shipped = manifest.read_text().split() if manifest.is_file() else []
        if shipped != pinned_jar_names("spark"):
            raise FileNotFoundError(
                f"{root}/{JARS_DIR}/ does not hold the spark jars of jvm/jars.sha256: run `make deps` and `dp build`"
            )
        return f"uploaded {len(upload_files(settings.aws_conn_id, root, files, target_uri))} files to {target_uri}"

    upload = upload_spark_apps(settings.spark_apps_local_dir, settings.spark_apps_uri)
    if settings.emr_cluster_id:
        create = None
        cluster_id = settings.emr_cluster_id
        first = upload
    else:
        create = EmrCreateJobFlowOperator(
            task_id="create_emr_cluster",
            aws_conn_id=settings.aws_conn_id,
            emr_conn_id=None,  # the whole configuration is in job_flow_overrides
            job_flow_overrides=job_flow_overrides(settings, cluster_name),
        )
        upload >> create
        cluster_id = "{{ ti.xcom_pull(task_ids='%s') }}" % create.task_id
        first = upload

    previous = create or upload
    sensors = []
    for job in jobs:
        if long_running:
            wait = EmrAddStepsOperator(
                task_id=job.name,
                job_flow_id=cluster_id,
                steps=[job.emr_step(settings)],
                aws_conn_id=settings.aws_conn_id,
                deferrable=True,
                waiter_delay=LONG_RUNNING_POLL_S,
                waiter_max_attempts=LONG_RUNNING_MAX_POLLS,
                outlets=outlets.get(job.name, []),
            )
            previous >> wait
            sensors.append(wait)
            if chain_jobs:
                previous = wait
            continue
        add = EmrAddStepsOperator(
            task_id=f"{job.name}_add_step",
            job_flow_id=cluster_id,
            steps=[job.emr_step(settings)],
            aws_conn_id=settings.aws_conn_id,
        )
        wait = EmrStepSensor(
            task_id=job.name,
            job_flow_id=cluster_id,
            step_id="{{ ti.xcom_pull(task_ids='%s')[0] }}" % add.task_id,
            aws_conn_id=settings.aws_conn_id,
            deferrable=True,
            outlets=outlets.get(job.name, []),
        )
        previous >> add >> wait
        sensors.append(wait)
        if chain_jobs:
            previous = wait

    last = sensors[-1] if chain_jobs else sensors
    if create is not None:
        terminate = EmrTerminateJobFlowOperator(
            task_id="terminate_emr_cluster",
            job_flow_id=cluster_id,
            aws_conn_id=settings.aws_conn_id,
            trigger_rule=TriggerRule.ALL_DONE,
        )
        sensors >> terminate

        @task(task_id="steps_succeeded", trigger_rule=TriggerRule.ONE_FAILED, retries=0)
        def steps_succeeded():
            raise RuntimeError("an EMR step failed (the cluster was terminated anyway): see the step's task log")

        guard = steps_succeeded()
        [create, *sensors] >> guard
        terminate >> guard
        return first, terminate
    return first, last


def wait_for_lake_folder(settings: Settings, task_id: str, folder_uri: str, pattern: str = "*", **kwargs):
    """A sensor for files under a lake folder: S3KeySensor on s3://, FileSensor on file://.

    ``folder_uri`` may hold templates (``{{ ds }}``). Reschedule mode frees the worker
    slot between pokes.
    """
    defaults = {"poke_interval": 60, "timeout": 6 * 3600, "mode": "reschedule"}
    defaults.update(kwargs)
    if folder_uri.startswith(("s3://", "s3a://")):
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        # s3a:// is Hadoop's name for the same object store (MinIO in docker-compose).
        key_uri = "s3://" + folder_uri.split("://", 1)[1]
        return S3KeySensor(
            task_id=task_id,
            bucket_key=f"{key_uri.rstrip('/')}/{pattern}",
            wildcard_match=True,
            aws_conn_id=settings.aws_conn_id,
            **defaults,
        )
    from airflow.providers.standard.sensors.filesystem import FileSensor

    path = folder_uri.removeprefix("file://")
    return FileSensor(task_id=task_id, filepath=f"{path.rstrip('/')}/{pattern}", fs_conn_id="fs_default", **defaults)
