"""Air quality, step 2 of 3: raw CSV exports to typed, partitioned Parquet, and the same typed
rows into Cassandra / Amazon Keyspaces.

Runs when `air_quality_raw` is updated. Two tasks, independent of each other (neither waits for
the other, and one failing does not stop the other):

* `air_quality_convert`: `spark_apps/air_quality/convert.py` reads every landed file: CPCB
  exports (preamble, units in headers, `None`/`NA`/empty as missing, any subset of the columns)
  and Kaggle's "Air Quality Data in India" files (station_hour, city_hour, station_day, city_day,
  stations), each recognised by its header; types them with an explicit schema (timestamps,
  doubles), and writes `curated/air_quality_hourly/` partitioned by month (rows sorted by station
  and hour inside, one file per month) and the daily files' rows to `curated/air_quality_daily/`. Malformed rows go to
  `quarantine/air_quality/` with their reason, the counts to MySQL `data_quality_runs`; the task
  fails only when their share passes 1 % (`--max-bad-share`). Rerunning replaces the output,
  never appends a second copy. Produces the `air_quality_parquet` asset,
  which triggers `air_quality_jobs`.
* `air_quality_to_cassandra`: `spark_apps/air_quality/to_cassandra.py` upserts the same good
  rows into `air_quality.hourly_readings` (partition station + month, newest hour first), so a
  rerun leaves the same rows; quarantined rows are not written, and above the same 1 % nothing is.

Why the Cassandra task reads the landed raw CSV (through the same typed reader, with the same
duplicate rule and threshold) rather than the curated Parquet: reading the Parquet would make it
wait for the conversion and fail with it; from the raw zone both tasks are functions of the same
input and run side by side. The price is parsing the CSV twice, small next to the writes.

Local spark-submit or EMR steps by `DP_RUNNER`; where Cassandra is travels as the job's
arguments (`DP_CASSANDRA_*` settings), credentials only through the environment or Secrets Manager.
The keyspace and table are created by `platform_bootstrap`.
"""
from __future__ import annotations

from airflow.sdk import DAG

from include.air_quality.assets import (
    DAILY_URI,
    PARQUET_URI,
    QUARANTINE_URI,
    RAW_URI,
    air_quality_parquet,
    air_quality_raw,
)
from include.cassandra import job_arguments as cassandra_job_arguments
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.platform.spark_jobs import SparkJob
from spark_apps.common.jit import JIT_HUGE_METHODS_CONF

cfg = platform_settings.load()

MAX_BAD_SHARE = "0.01"

convert = SparkJob(
    name="air_quality_convert",
    entry="spark_apps/air_quality/convert.py",
    args=["--raw", RAW_URI, "--parquet", PARQUET_URI, "--daily", DAILY_URI, "--quarantine", QUARANTINE_URI,
          "--max-bad-share", MAX_BAD_SHARE],
    conf=JIT_HUGE_METHODS_CONF,
)
to_cassandra = SparkJob(
    name="air_quality_to_cassandra",
    entry="spark_apps/air_quality/to_cassandra.py",
    args=["--raw", RAW_URI, "--max-bad-share", MAX_BAD_SHARE,
          *cassandra_job_arguments(cfg)],
    conf=JIT_HUGE_METHODS_CONF,
)

with DAG(
    dag_id="air_quality_convert",
    doc_md=__doc__,
    schedule=[air_quality_raw],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "air-quality", "spark", "cassandra"],
) as dag:
    spark_job_tasks([convert, to_cassandra], cfg, cluster_name="dataplatform-air-quality-convert",
                    chain_jobs=False, outlets={convert.name: [air_quality_parquet]})
