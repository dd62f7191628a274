"""Access-log analysis (Spark RDDs), one run per day.

The run of day D (midnight) analyses the complete previous day D-1. It waits for the
day's folder `raw/access_logs/date=YYYY-MM-DD/` in the lake (S3KeySensor on an S3 lake:
s3a:// on the embedded moto, s3:// on AWS; FileSensor on file://), then runs
`spark_apps/access_logs/job.py` on it (local spark-submit, or an EMR step when
`DP_RUNNER=emr`). The job parses every line once into a cached RDD and computes:
unique client IPs and top clients, URLs of 200 responses, 4xx totals per status,
responses larger than 5000 bytes, the most requested URL and the URL with most 404s.

Results land in MySQL tables keyed by `log_date` (`access_log_*`; rerunning a day
replaces that day), a JSON summary in `reports/access_logs/date=.../summary.json`,
unparseable lines with file, line number and reason in `quarantine/access_logs/`.
The summary numbers are printed in the Spark task's log.

Backfill a range of log days (runs are one day later than the logs they analyse):
`airflow backfill create --dag-id access_log_analysis --from-date 2024-01-02 --to-date 2024-01-08`.
"""
from __future__ import annotations

from airflow.sdk import DAG

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks, wait_for_lake_folder
from include.platform.spark_jobs import SparkJob
from spark_apps.common.lake import join

cfg = platform_settings.load()
# Airflow 3's @daily fires at midnight with ds = that day; the complete log day is the one before.
LOG_DATE = "{{ macros.ds_add(ds, -1) }}"
DAY_FOLDER = join(cfg.lake_uri, "raw", "access_logs", f"date={LOG_DATE}")

analyse_day = SparkJob(
    name="access_log_analysis",
    entry="spark_apps/access_logs/job.py",
    args=[
        "--input", DAY_FOLDER,
        "--log-date", LOG_DATE,
        "--summary-uri", join(cfg.lake_uri, "reports", "access_logs"),
        "--quarantine-uri", join(cfg.lake_uri, "quarantine", "access_logs"),
        "--top-n", "10",
    ],
)

with DAG(
    dag_id="access_log_analysis",
    doc_md=__doc__,
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # two cores: one day at a time, also during backfills
    default_args=DEFAULT_ARGS,
    tags=["batch", "access-logs", "spark-rdd"],
) as dag:
    day_folder_ready = wait_for_lake_folder(cfg, "wait_for_day_folder", DAY_FOLDER, pattern="*.log*")
    first, _ = spark_job_tasks([analyse_day], cfg, cluster_name=f"dataplatform-access-logs-{LOG_DATE}")
    day_folder_ready >> first
