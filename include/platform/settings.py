"""Every setting the DAGs and tools read, from environment variables only.

DAG files call :func:`load` at parse time, so this module does no I/O: it only
reads ``os.environ``. The embedded stack writes these variables into
``$DP_HOME/stack.env``; docker-compose sets them in its ``x-airflow-env`` block;
on AWS set them in the Airflow deployment (MWAA environment variables, ...).
The same DAG code then targets local Spark or EMR by configuration alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_home() -> Path:
    """Where the embedded stack keeps its state (outside the repo: secrets live there)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(os.environ.get("DP_HOME") or Path(base) / "dataplatform")


@dataclass(frozen=True)
class Settings:
    # Where Spark work runs: "local" renders jobs to SparkSubmitOperator against
    # spark_conn_id; "emr" renders the same jobs to EMR steps.
    runner: str
    lake_uri: str
    # Root holding spark_apps.zip and the entry-point files (build/ locally,
    # an s3:// prefix on AWS: the EMR DAGs upload build/ there first).
    spark_apps_uri: str
    spark_apps_local_dir: str
    aws_conn_id: str
    spark_conn_id: str
    # The supervised long-running streaming jobs' connection (local[1] in the embedded stack: ten of them
    # share two cores with the batch jobs, see include/platform/stack/environment.py).
    spark_streaming_conn_id: str
    # Heap of a supervised streaming job run by spark-submit (``--driver-memory``; None: as any
    # other job). The embedded stack sets 1g: eight of them at a quarter of the RAM each could
    # ask for three times the machine's memory beside the batch jobs.
    spark_streaming_driver_memory: str | None
    kafka_conn_id: str
    mysql_conn_id: str
    # Buckets the platform creates (in moto locally, in AWS for real).
    lake_bucket: str
    artifacts_bucket: str
    # EMR (README, "AWS"). The release fixes the cluster's Spark line, which picks the connector
    # jars the steps pass (jvm/pom.xml has one jar group per Spark line): emr-spark-8.0.0 ships
    # Spark 4.0.2, Scala 2.13, Python 3.11 and JDK 17.
    emr_release: str
    emr_instance_type: str
    emr_core_instance_count: int
    emr_log_uri: str
    emr_idle_timeout_s: int
    emr_step_concurrency: int
    emr_cluster_id: str  # reuse this cluster instead of creating one when set
    emr_results_db_secret_id: str
    # Where new air-quality exports arrive before landing (a local folder or s3:// prefix)
    air_quality_incoming: str
    # "one_app": the ten air-quality jobs in one Spark application reading the Parquet once
    # (faster, see README benchmarks); "per_job": ten Spark applications.
    air_quality_mode: str
    # Cassandra / Amazon Keyspaces (spark_apps/common/cassandra.py reads the same DP_CASSANDRA_*
    # variables, and the credentials, at run time): where the jobs connect and the replication
    # platform_bootstrap creates the keyspaces with (a JSON object).
    cassandra_contact_points: str = "127.0.0.1"
    cassandra_port: int = 9042
    cassandra_local_dc: str = ""
    cassandra_replication: str = '{"class": "SimpleStrategy", "replication_factor": 1}'
    # How to reach it (Amazon Keyspaces: TLS, protocol v4, credentials from a Secrets Manager secret
    # named here); passed to the jobs as arguments (include.cassandra.job_arguments), never the credentials.
    cassandra_ssl: bool = False
    cassandra_ssl_ca_file: str = ""
    cassandra_protocol_version: int | None = None
    cassandra_secret_id: str = ""
    # The weather pipeline: cities polled when OPENWEATHER_API_KEY is set (comma-separated ids),
    # else the recorded responses replayed at weather_replay_rate a second, their dt stamped
    # "now" or kept "original".
    weather_city_ids: str = "5344157,2643743,2988507,5128581,1850147,1277333"
    weather_poll_interval_s: float = 600.0
    weather_replay_rate: float = 0.2
    weather_replay_timestamps: str = "now"
    # The app-events pipeline: the producer's events a second, distinct users and share of
    # deliberately broken records (0: none; a small share shows the dead-letter path in the demo).
    app_events_rate: float = 5.0
    app_events_users: int = 10_000
    app_events_invalid_share: float = 0.0
    # The WebSocket pipeline: where its service listens (include/platform/stack/websocket.py).
    websocket_url: str = "ws://127.0.0.1:8765"
    # EMR, further settings (README, "AWS")
    # Spark line of the release ("4.0"), from EMR_SPARK_LINES unless DP_EMR_SPARK_LINE says otherwise.
    emr_spark_line: str = "4.0"
    # The region of the cluster: YARN containers have no default region, so the jobs' boto3
    # clients (the Secrets Manager secret of the results DB) get it as AWS_DEFAULT_REGION.
    aws_region: str = "us-east-1"
    # IAM roles: the v2 defaults (EMR_DefaultRole_V2) only act on resources tagged
    # for-use-with-amazon-emr-managed-policies=true, which every cluster gets.
    emr_service_role: str = "EMR_DefaultRole"
    emr_job_flow_role: str = "EMR_EC2_DefaultRole"
    # Network: the subnet (Ec2SubnetId; empty: EMR's default VPC) and the EMR-managed security
    # groups of the primary and core nodes and of service access (private subnets); empty: EMR's.
    emr_subnet_id: str = ""
    emr_primary_security_group: str = ""
    emr_core_security_group: str = ""
    emr_service_access_security_group: str = ""
    # How long a DAG waits for a batch step (EmrStepSensor) before failing it; a DAG passes its
    # own to spark_job_tasks(step_timeout_s=...) when its jobs need longer.
    emr_step_timeout_s: int = 6 * 3600
    # How often the EMR tasks ask for their steps' state.
    emr_poll_interval_s: int = 60


# EMR release label -> Spark line of its Spark (AWS EMR release guide). emr-7.x ships Spark 3.5
# (Python 3.9), on which the jobs cannot run (pyspark.sql.datasource, Column.try_cast are Spark 4).
EMR_SPARK_LINES = {"emr-spark-8.0.0": "4.0"}


def emr_spark_line(release: str) -> str:
    line = EMR_SPARK_LINES.get(release)
    if line is None:
        raise ValueError(
            f"DP_EMR_RELEASE={release!r}: the platform runs on Spark 4.0+ (e.g. emr-spark-8.0.0); "
            f"for another Spark 4 release set DP_EMR_SPARK_LINE to its Spark line (known: {EMR_SPARK_LINES})"
        )
    return line


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def load() -> Settings:
    home = default_home()
    artifacts_bucket = _env("DP_ARTIFACTS_BUCKET", "dataplatform-artifacts")
    runner = _env("DP_RUNNER", "local")
    emr_release = _env("DP_EMR_RELEASE", "emr-spark-8.0.0")
    local_apps = _env("DP_SPARK_APPS_LOCAL_DIR", str(REPO_ROOT / "build"))
    default_apps_uri = (
        f"s3://{artifacts_bucket}/spark_apps" if runner == "emr" else Path(local_apps).as_uri()
    )
    return Settings(
        runner=runner,
        lake_uri=_env("DP_LAKE_URI", (home / "lake").as_uri()),
        spark_apps_uri=_env("DP_SPARK_APPS_URI", default_apps_uri),
        spark_apps_local_dir=local_apps,
        aws_conn_id=_env("DP_AWS_CONN_ID", "aws_default"),
        spark_conn_id=_env("DP_SPARK_CONN_ID", "spark_default"),
        spark_streaming_conn_id=_env("DP_SPARK_STREAMING_CONN_ID", "spark_streaming"),
        spark_streaming_driver_memory=os.environ.get("DP_SPARK_STREAMING_DRIVER_MEMORY") or None,
        kafka_conn_id=_env("DP_KAFKA_CONN_ID", "kafka_default"),
        mysql_conn_id=_env("DP_MYSQL_CONN_ID", "mysql_results"),
        lake_bucket=_env("DP_LAKE_BUCKET", "dataplatform-lake"),
        artifacts_bucket=artifacts_bucket,
        emr_release=emr_release,
        emr_instance_type=_env("DP_EMR_INSTANCE_TYPE", "m5.xlarge"),
        emr_core_instance_count=int(_env("DP_EMR_CORE_INSTANCES", "2")),
        emr_log_uri=_env("DP_EMR_LOG_URI", f"s3://{artifacts_bucket}/emr-logs/"),
        emr_idle_timeout_s=int(_env("DP_EMR_IDLE_TIMEOUT_S", "3600")),
        emr_step_concurrency=int(_env("DP_EMR_STEP_CONCURRENCY", "1")),
        emr_cluster_id=_env("DP_EMR_CLUSTER_ID", ""),
        emr_results_db_secret_id=_env("DP_RESULTS_DB_SECRET_ID", "dataplatform/results-db"),
        # The release is only checked where it is used: DAGs of the local runner never ask.
        emr_spark_line=os.environ.get("DP_EMR_SPARK_LINE") or (
            emr_spark_line(emr_release) if runner == "emr" else EMR_SPARK_LINES.get(emr_release, "")),
        aws_region=_env("DP_AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
        emr_service_role=_env("DP_EMR_SERVICE_ROLE", "EMR_DefaultRole"),
        emr_job_flow_role=_env("DP_EMR_JOB_FLOW_ROLE", "EMR_EC2_DefaultRole"),
        emr_subnet_id=_env("DP_EMR_SUBNET_ID", ""),
        emr_primary_security_group=_env("DP_EMR_PRIMARY_SECURITY_GROUP", ""),
        emr_core_security_group=_env("DP_EMR_CORE_SECURITY_GROUP", ""),
        emr_service_access_security_group=_env("DP_EMR_SERVICE_ACCESS_SECURITY_GROUP", ""),
        emr_step_timeout_s=int(_env("DP_EMR_STEP_TIMEOUT_S", str(6 * 3600))),
        emr_poll_interval_s=int(_env("DP_EMR_POLL_INTERVAL_S", "60")),
        air_quality_incoming=_env("DP_AIR_QUALITY_INCOMING", str(home / "incoming" / "air_quality")),
        air_quality_mode=_env("DP_AIR_QUALITY_MODE", "one_app"),
        cassandra_contact_points=_env("DP_CASSANDRA_CONTACT_POINTS", "127.0.0.1"),
        cassandra_port=int(_env("DP_CASSANDRA_PORT", "9042")),
        cassandra_local_dc=_env("DP_CASSANDRA_LOCAL_DC", ""),
        cassandra_replication=_env("DP_CASSANDRA_REPLICATION", '{"class": "SimpleStrategy", "replication_factor": 1}'),
        cassandra_ssl=_env("DP_CASSANDRA_SSL", "false").strip().lower() in ("1", "true", "yes", "on"),
        cassandra_ssl_ca_file=_env("DP_CASSANDRA_SSL_CA_FILE", ""),
        cassandra_protocol_version=int(_env("DP_CASSANDRA_PROTOCOL_VERSION", "0")) or None,
        cassandra_secret_id=_env("DP_CASSANDRA_SECRET_ID", ""),
        weather_city_ids=_env("DP_WEATHER_CITY_IDS", "5344157,2643743,2988507,5128581,1850147,1277333"),
        weather_poll_interval_s=float(_env("DP_WEATHER_POLL_INTERVAL_S", "600")),
        weather_replay_rate=float(_env("DP_WEATHER_REPLAY_RATE", "0.2")),
        weather_replay_timestamps=_env("DP_WEATHER_REPLAY_TIMESTAMPS", "now"),
        app_events_rate=float(_env("DP_APP_EVENTS_RATE", "5")),
        app_events_users=int(_env("DP_APP_EVENTS_USERS", "10000")),
        app_events_invalid_share=float(_env("DP_APP_EVENTS_INVALID_SHARE", "0")),
        websocket_url=_env("DP_WEBSOCKET_URL", f"ws://127.0.0.1:{_env('DP_WEBSOCKET_PORT', '8765')}"),
    )


def asset_uri(uri: str) -> str:
    """Asset URIs use s3:// for the object store whatever Hadoop calls it (s3a:// on MinIO)."""
    return "s3://" + uri.split("://", 1)[1] if uri.startswith("s3a://") else uri
