"""Air quality, step 2 of 3: raw CSV exports to typed, partitioned Parquet.

Runs when `air_quality_raw` is updated. `spark_apps/air_quality/convert.py` reads every
landed export (preamble, units in headers, `None`/`NA`/empty as missing, any subset of
the columns), types it with an explicit schema (timestamps, doubles), and writes
`curated/air_quality_hourly/` partitioned by station and month. Malformed rows go to
`quarantine/air_quality/` with their reason; the task fails only when their share passes
1 % (`--max-bad-share`). Rerunning replaces the output, never appends a second copy.

Produces the `air_quality_parquet` asset, which triggers `air_quality_jobs`.
Local spark-submit or EMR step by `DP_RUNNER`.
"""
from __future__ import annotations

from airflow.sdk import DAG

from include.air_quality.assets import PARQUET_URI, QUARANTINE_URI, RAW_URI, air_quality_parquet, air_quality_raw
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.platform.spark_jobs import SparkJob

cfg = platform_settings.load()

convert = SparkJob(
    name="air_quality_convert",
    entry="spark_apps/air_quality/convert.py",
    args=["--raw", RAW_URI, "--parquet", PARQUET_URI, "--quarantine", QUARANTINE_URI, "--max-bad-share", "0.01"],
)

with DAG(
    dag_id="air_quality_convert",
    doc_md=__doc__,
    schedule=[air_quality_raw],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "air-quality", "spark"],
) as dag:
    spark_job_tasks([convert], cfg, cluster_name="dataplatform-air-quality-convert",
                    outlets={convert.name: [air_quality_parquet]})
