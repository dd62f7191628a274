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
    kafka_conn_id: str
    mysql_conn_id: str
    # Buckets the platform creates (in moto locally, in AWS for real).
    lake_bucket: str
    artifacts_bucket: str
    # EMR
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
    # The weather pipeline: cities polled when OPENWEATHER_API_KEY is set (comma-separated ids),
    # else the recorded responses replayed at weather_replay_rate a second, their dt stamped
    # "now" or kept "original".
    weather_city_ids: str = "5344157,2643743,2988507,5128581,1850147,1277333"
    weather_poll_interval_s: float = 600.0
    weather_replay_rate: float = 0.2
    weather_replay_timestamps: str = "now"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def load() -> Settings:
    home = default_home()
    artifacts_bucket = _env("DP_ARTIFACTS_BUCKET", "dataplatform-artifacts")
    runner = _env("DP_RUNNER", "local")
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
        kafka_conn_id=_env("DP_KAFKA_CONN_ID", "kafka_default"),
        mysql_conn_id=_env("DP_MYSQL_CONN_ID", "mysql_results"),
        lake_bucket=_env("DP_LAKE_BUCKET", "dataplatform-lake"),
        artifacts_bucket=artifacts_bucket,
        emr_release=_env("DP_EMR_RELEASE", "emr-7.9.0"),
        emr_instance_type=_env("DP_EMR_INSTANCE_TYPE", "m5.xlarge"),
        emr_core_instance_count=int(_env("DP_EMR_CORE_INSTANCES", "2")),
        emr_log_uri=_env("DP_EMR_LOG_URI", f"s3://{artifacts_bucket}/emr-logs/"),
        emr_idle_timeout_s=int(_env("DP_EMR_IDLE_TIMEOUT_S", "3600")),
        emr_step_concurrency=int(_env("DP_EMR_STEP_CONCURRENCY", "1")),
        emr_cluster_id=_env("DP_EMR_CLUSTER_ID", ""),
        emr_results_db_secret_id=_env("DP_RESULTS_DB_SECRET_ID", "dataplatform/results-db"),
        air_quality_incoming=_env("DP_AIR_QUALITY_INCOMING", str(home / "incoming" / "air_quality")),
        air_quality_mode=_env("DP_AIR_QUALITY_MODE", "one_app"),
        cassandra_contact_points=_env("DP_CASSANDRA_CONTACT_POINTS", "127.0.0.1"),
        cassandra_port=int(_env("DP_CASSANDRA_PORT", "9042")),
        cassandra_local_dc=_env("DP_CASSANDRA_LOCAL_DC", ""),
        cassandra_replication=_env("DP_CASSANDRA_REPLICATION", '{"class": "SimpleStrategy", "replication_factor": 1}'),
        weather_city_ids=_env("DP_WEATHER_CITY_IDS", "5344157,2643743,2988507,5128581,1850147,1277333"),
        weather_poll_interval_s=float(_env("DP_WEATHER_POLL_INTERVAL_S", "600")),
        weather_replay_rate=float(_env("DP_WEATHER_REPLAY_RATE", "0.2")),
        weather_replay_timestamps=_env("DP_WEATHER_REPLAY_TIMESTAMPS", "now"),
    )


def asset_uri(uri: str) -> str:
    """Asset URIs use s3:// for the object store whatever Hadoop calls it (s3a:// on MinIO)."""
    return "s3://" + uri.split("://", 1)[1] if uri.startswith("s3a://") else uri
