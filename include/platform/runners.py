"""Turn SparkJob definitions into Airflow tasks for the configured runner.

``DP_RUNNER=local``: one SparkSubmitOperator per job on ``spark_default`` (local[2]
in the embedded stack, spark://spark-master:7077 in docker-compose).

``DP_RUNNER=emr``: upload the artifact (bundle, entry files, bootstrap action, the
connector jars of the cluster's Spark line that the steps pass as ``--jars``) to S3, create
a cluster (or use ``DP_EMR_CLUSTER_ID``, or the running cluster of that name), add one step
per job and wait with an EmrStepSensor in reschedule mode, then terminate the cluster we created as
the teardown of its creation (as the Amazon provider's ``example_emr`` does): it runs when a
step failed too, and is skipped when the creation failed; the run's state comes from the
steps, not from the teardown.

Not deferrable: the provider's triggers need aiobotocore, and no aiobotocore release supports
the botocore of requirements.lock (1.44). A sensor in reschedule mode frees its worker slot
between pokes all the same; a streaming step's task holds one while its step runs, as its
SparkSubmitOperator does locally.

Creation and batch add-step tasks never retry: a retry would leak a second cluster or add
the step twice. Long-running (streaming) steps are resubmitted by their task's retries, and
a retry first re-attaches to a PENDING/RUNNING step of the same name
(:class:`~include.platform.operators.ReattachingEmrAddStepsOperator`).
"""
from __future__ import annotations

from typing import Sequence

from include.platform.settings import Settings
from include.platform.spark_jobs import EMR_PYTHON, SparkJob

# The cluster tag the v2 default roles (EMR_DefaultRole_V2) require of the resources they manage.
MANAGED_POLICY_TAG = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}


def job_flow_overrides(settings: Settings, name: str, step_concurrency: int | None = None) -> dict:
    """EMR cluster configuration, every knob from settings (release, instances, network, roles,
    logs, idle timeout); ``step_concurrency`` overrides DP_EMR_STEP_CONCURRENCY."""
    env = {"DP_RESULTS_DB_SECRET_ID": settings.emr_results_db_secret_id, "AWS_DEFAULT_REGION": settings.aws_region}
    apps = settings.spark_apps_uri.rstrip("/")
    instances = {
        "InstanceGroups": [
            {"Name": "primary", "Market": "ON_DEMAND", "InstanceRole": "MASTER",
             "InstanceType": settings.emr_instance_type, "InstanceCount": 1},
            {"Name": "core", "Market": "ON_DEMAND", "InstanceRole": "CORE",
             "InstanceType": settings.emr_instance_type, "InstanceCount": settings.emr_core_instance_count},
        ],
        # Steps are added by the DAG after creation; the DAG terminates the cluster.
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    network = {
        "Ec2SubnetId": settings.emr_subnet_id,
        "EmrManagedMasterSecurityGroup": settings.emr_primary_security_group,
        "EmrManagedSlaveSecurityGroup": settings.emr_core_security_group,
        "ServiceAccessSecurityGroup": settings.emr_service_access_security_group,
    }
    instances.update({key: value for key, value in network.items() if value})
    return {
        "Name": name,
        "ReleaseLabel": settings.emr_release,
        "Applications": [{"Name": "Spark"}],
        "LogUri": settings.emr_log_uri,
        "Instances": instances,
        # Safety net if the terminate task itself never runs (scheduler down, ...).
        "AutoTerminationPolicy": {"IdleTimeout": settings.emr_idle_timeout_s},
        "StepConcurrencyLevel": step_concurrency or settings.emr_step_concurrency,
        # The packages the jobs import, pinned from requirements.lock (build/bootstrap/).
        "BootstrapActions": [
            {"Name": "python-deps",
             "ScriptBootstrapAction": {"Path": f"{apps}/bootstrap/install_python_deps.sh",
                                       "Args": [f"{apps}/bootstrap", EMR_PYTHON]}},
        ],
        # Only the *name* of the results-DB secret travels; jobs fetch it from Secrets Manager
        # (the instance role needs secretsmanager:GetSecretValue on it) in the region passed here.
        "Configurations": [
            {"Classification": "spark-env",
             "Configurations": [{"Classification": "export",
                                 "Properties": {**env, "PYSPARK_PYTHON": EMR_PYTHON}}]},
            {"Classification": "spark-defaults",
             "Properties": {"spark.pyspark.python": EMR_PYTHON}
             | {f"spark.yarn.appMasterEnv.{k}": v for k, v in env.items()}
             | {f"spark.executorEnv.{k}": v for k, v in env.items()}},
        ],
        "JobFlowRole": settings.emr_job_flow_role,
        "ServiceRole": settings.emr_service_role,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": "project", "Value": "dataplatform"}, MANAGED_POLICY_TAG],
    }


def spark_job_tasks(
    jobs: Sequence[SparkJob],
    settings: Settings,
    cluster_name: str,
    *,
    chain_jobs: bool = True,
    outlets: dict[str, list] | None = None,
    long_running: bool = False,
    on_running_cluster: bool = False,
    step_timeout_s: int | None = None,
):
    """Create the tasks running ``jobs`` in the current DAG / TaskGroup.

    Returns ``(first, last)`` so the caller can wire them up; on EMR ``last`` is the last
    step's sensor (the cluster's teardown runs beside it). Jobs run one after the other when
    ``chain_jobs`` (the default: local[2] has two cores) else in parallel. ``outlets`` maps a
    job name to the Assets its task produces (on EMR: the step sensor, which succeeds only
    when the step did).

    ``long_running`` is for supervised streaming jobs, whose task retries must
    *resubmit* the job. Locally that is what a retried SparkSubmitOperator does. On EMR
    the usual add-step task + sensor pair cannot do it (a retried sensor only re-reads
    the failed step), so each job becomes one add-step task that adds its step and waits
    for it: a retry adds a fresh step, which resumes from the query's checkpoint,
    unless the previous one is still PENDING/RUNNING (then it waits for that one). The
    cluster created for them runs every job at once (StepConcurrencyLevel >= jobs + 1: one
    more for a batch step such as the health DAG's totals).

    ``on_running_cluster``: on EMR, add the steps to the running cluster named
    ``cluster_name`` (or ``DP_EMR_CLUSTER_ID``) and never create one: for small periodic
    jobs beside the streaming steps. ``step_timeout_s``: how long a step may run before its
    sensor fails (default DP_EMR_STEP_TIMEOUT_S).
    """
    outlets = outlets or {}
    if settings.runner == "emr":
        return _emr_tasks(jobs, settings, cluster_name, chain_jobs, outlets, long_running, on_running_cluster,
                          step_timeout_s or settings.emr_step_timeout_s)
    if settings.runner != "local":
        raise ValueError(f"DP_RUNNER must be 'local' or 'emr', not {settings.runner!r}")
    # Long-running jobs go to their own connection (local[1] in the embedded stack), see Settings.
    conn_id = settings.spark_streaming_conn_id if long_running else settings.spark_conn_id
    sizing = ({"driver_memory": settings.spark_streaming_driver_memory}
              if long_running and settings.spark_streaming_driver_memory else {})
    tasks = [job.local_operator(settings, conn_id=conn_id, outlets=outlets.get(job.name, []), **sizing)
             for job in jobs]
    if chain_jobs:
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream
        return tasks[0], tasks[-1]
    return tasks, tasks


# A streaming step runs for weeks: let its add-step task wait (almost) forever.
LONG_RUNNING_MAX_POLLS = 10**7
# Clusters an attached task may add its steps to.
LIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]


def _emr_tasks(jobs: Sequence[SparkJob], settings: Settings, cluster_name: str, chain_jobs: bool, outlets: dict,
               long_running: bool, on_running_cluster: bool, step_timeout_s: int):
    from airflow.providers.amazon.aws.operators.emr import (
        EmrAddStepsOperator,
        EmrCreateJobFlowOperator,
        EmrTerminateJobFlowOperator,
    )
    from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
    from airflow.sdk import task

    from include.platform.operators import ReattachingEmrAddStepsOperator
    from include.platform.spark_jobs import emr_jars

    @task(task_id="upload_spark_apps")
    def upload_spark_apps(local_dir: str, target_uri: str, jar_uris: list[str]) -> str:
        from pathlib import Path

        from include.platform.s3_upload import upload_files
        from include.platform.spark_jobs import JARS_MANIFEST

        root = Path(local_dir)
        jars_folder = jar_uris[0].rsplit("/", 2)[-2]
        # Not the other Spark lines' jars (build/jars/ is Spark 4.2's, for local runs).
        files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                 and not (p.relative_to(root).parts[0].startswith("jars") and p.relative_to(root).parts[0] != jars_folder)]
        if not any(p.name == "spark_apps.zip" for p in files):
            raise FileNotFoundError(f"{root}/spark_apps.zip missing: run `dp build` first")
        # The steps name the jars of the cluster's Spark line from jvm/jars.sha256 (at parse
        # time): the artifact must hold exactly those.
        manifest = root / jars_folder / JARS_MANIFEST
        shipped = manifest.read_text().split() if manifest.is_file() else []
        if shipped != [uri.rsplit("/", 1)[-1] for uri in jar_uris]:
            raise FileNotFoundError(
                f"{root}/{jars_folder}/ does not hold the jars of jvm/jars.sha256 for Spark "
                f"{settings.emr_spark_line}: run `make deps` and `dp build`"
            )
        return f"uploaded {len(upload_files(settings.aws_conn_id, root, files, target_uri))} files to {target_uri}"

    upload = upload_spark_apps(settings.spark_apps_local_dir, settings.spark_apps_uri, emr_jars(settings))
    create = None
    # Where the steps go: a fixed cluster id, the running cluster of that name (looked up by the
    # add-step task, which pushes the id for its sensor), or the cluster created here.
    by_name = on_running_cluster and not settings.emr_cluster_id
    if settings.emr_cluster_id:
        cluster_id = settings.emr_cluster_id
    elif not on_running_cluster:
        create = EmrCreateJobFlowOperator(
            task_id="create_emr_cluster",
            aws_conn_id=settings.aws_conn_id,
            emr_conn_id=None,  # the whole configuration is in job_flow_overrides
            job_flow_overrides=job_flow_overrides(
                settings, cluster_name, max(settings.emr_step_concurrency, len(jobs) + 1) if long_running else None),
            retries=0,  # a retry after a timeout would start a second cluster
        )
        upload >> create
        cluster_id = "{{ ti.xcom_pull(task_ids='%s') }}" % create.task_id
    target = ({"job_flow_name": cluster_name, "cluster_states": LIVE_CLUSTER_STATES} if by_name
              else {"job_flow_id": cluster_id})

    previous = create or upload
    sensors = []
    for job in jobs:
        if long_running:
            wait = ReattachingEmrAddStepsOperator(
                task_id=job.name,
                steps=[job.emr_step(settings)],
                aws_conn_id=settings.aws_conn_id,
                wait_for_completion=True,
                waiter_delay=settings.emr_poll_interval_s,
                waiter_max_attempts=LONG_RUNNING_MAX_POLLS,
                outlets=outlets.get(job.name, []),
                **target,
            )
            previous >> wait
            sensors.append(wait)
            if chain_jobs:
                previous = wait
            continue
        add = EmrAddStepsOperator(
            task_id=f"{job.name}_add_step",
            steps=[job.emr_step(settings)],
            aws_conn_id=settings.aws_conn_id,
            retries=0,  # a retry would run the job twice
            **target,
        )
        wait = EmrStepSensor(
            task_id=job.name,
            job_flow_id=("{{ ti.xcom_pull(task_ids='%s', key='job_flow_id') }}" % add.task_id) if by_name else cluster_id,
            step_id="{{ ti.xcom_pull(task_ids='%s')[0] }}" % add.task_id,
            aws_conn_id=settings.aws_conn_id,
            mode="reschedule",
            poke_interval=settings.emr_poll_interval_s,
            timeout=step_timeout_s,
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
        ).as_teardown(setups=create)
        sensors >> terminate
    return upload, last


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
