"""Air quality, step 3 of 3: eleven Spark filter/aggregate jobs over the Parquet, each into its
own MySQL table (idempotent: a rerun leaves the same rows).

Runs when `air_quality_parquet` is updated. The jobs (`spark_apps/air_quality/jobs.py`):

| job | MySQL table | what |
|---|---|---|
| avg_ws_df | aq_avg_ws | average wind speed per hour (the seed's `avg_ws_df`) |
| daily_pm_df | aq_daily_pm | daily mean PM2.5 and PM10 per station |
| exceedance_df | aq_exceedance | hours and days above India's standards (PM2.5 > 60, PM10 > 100) |
| monthly_stats_df | aq_monthly_stats | monthly min/max/mean per pollutant and station |
| daily_aqi_df | aq_daily_aqi | daily National AQI (CPCB sub-indices) with category |
| top_polluted_days_df | aq_top_polluted_days | top-N most polluted days per station |
| diurnal_profile_df | aq_diurnal_profile | mean per hour of day |
| completeness_df | aq_completeness | share of hours with data per column, station, month |
| wind_rose_df | aq_wind_rose | share of hours per direction sector and speed band |
| temp_ozone_corr_df | aq_temp_ozone_corr | monthly correlation of temperature with ozone |
| aqi_vs_source_df | aq_aqi_vs_source | the daily AQI against the daily file's own AQI: agreement, mean difference, worst days |

`daily_aqi_df` and `aqi_vs_source_df` also read the daily dataset (`curated/air_quality_daily/`,
Kaggle's daily files); the other jobs need hourly values and log that they leave it out.

`DP_AIR_QUALITY_MODE=one_app` (default, the faster in `bench/`): one Spark application
reads the Parquet once and runs all eleven; then one task per table logs its row count.
`per_job`: eleven Spark applications, one task each (each logs its row count).
"""
from __future__ import annotations

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, TaskGroup

from include.air_quality.assets import DAILY_URI, PARQUET_URI, air_quality_parquet
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.platform.spark_jobs import SparkJob
from spark_apps.common.jit import JIT_HUGE_METHODS_CONF

cfg = platform_settings.load()

# name -> MySQL table; kept in sync with spark_apps/air_quality/jobs.py JOBS by
# tests/dags/test_air_quality_dags.py (importing jobs.py here would import Spark at parse time).
AIR_QUALITY_TABLES = {
    "avg_ws_df": "aq_avg_ws",
    "daily_pm_df": "aq_daily_pm",
    "exceedance_df": "aq_exceedance",
    "monthly_stats_df": "aq_monthly_stats",
    "daily_aqi_df": "aq_daily_aqi",
    "top_polluted_days_df": "aq_top_polluted_days",
    "diurnal_profile_df": "aq_diurnal_profile",
    "completeness_df": "aq_completeness",
    "wind_rose_df": "aq_wind_rose",
    "temp_ozone_corr_df": "aq_temp_ozone_corr",
    "aqi_vs_source_df": "aq_aqi_vs_source",
}


def _job(jobs: str, name: str) -> SparkJob:
    return SparkJob(name=name, entry="spark_apps/air_quality/run_jobs.py",
                    args=["--parquet", PARQUET_URI, "--daily", DAILY_URI, "--jobs", jobs, "--top-n", "10"],
                    conf=JIT_HUGE_METHODS_CONF)


with DAG(
    dag_id="air_quality_jobs",
    doc_md=__doc__,
    schedule=[air_quality_parquet],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "air-quality", "spark", "mysql"],
) as dag:
    if cfg.air_quality_mode == "per_job":
        spark_job_tasks([_job(name, name) for name in AIR_QUALITY_TABLES], cfg,
                        cluster_name="dataplatform-air-quality-jobs")
    else:
        _, all_jobs_done = spark_job_tasks([_job("all", "air_quality_all_jobs")], cfg,
                                           cluster_name="dataplatform-air-quality-jobs")
        with TaskGroup("results") as results:
            for name, table in AIR_QUALITY_TABLES.items():
                SQLExecuteQueryOperator(
                    task_id=name,
                    conn_id=cfg.mysql_conn_id,
                    sql=f"SELECT '{table}' AS table_name, COUNT(*) AS row_count FROM {table}",
                    show_return_value_in_logs=True,
                )
        all_jobs_done >> results
