"""Energy x weather analysis, daily and on demand: charts and a linear regression of the joined
readings (`spark_apps/energy_analysis/job.py`, a local spark-submit or an EMR step).

The scheduled run of day D analyses the 28 complete days before D (`DP_ENERGY_ANALYSIS_DAYS`), a
run on an `energy_joined` event or a manual one the 28 days up to its own day (today so far too) of
`lake.energy_joined`, the stream-stream join's output (`energy/joined/`), read by name: the job
registers the lake's datasets as external tables first (`spark_apps/common/catalog.py`; a Derby
metastore in the stack's home, the Glue Data Catalog on EMR). It writes:

* charts into the lake's `reports/D/` (PNG): energy use against temperature with the fitted
  slope, the weekly profile (mean kWh per hour by weekday), the daily profile (by hour of day);
* the fitted MLlib PipelineModel into `models/energy_regression/D/` (overwritten);
* one row into MySQL `energy_regression_runs` (key `run_date`; a rerun replaces it): RMSE, MAE
  and R² on the 30 % test split (fixed seed), split sizes, the temperature coefficient.

The Reports page in the Airflow UI shows the newest run. Schedule: daily, and whenever the
`energy_joined` Asset has an event. A run fails when the range holds fewer than 100 readings.
"""
from __future__ import annotations

from airflow.sdk import DAG
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from include.energy.jobs import ANALYSIS_JOB, energy_joined
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks

cfg = platform_settings.load()

with DAG(
    dag_id="energy_analysis",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("@daily", timezone="UTC"), assets=[energy_joined]),
    start_date=START_DATE,
    catchup=False,
    # One run at a time: the Derby metastore admits one application (and two cores locally).
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "energy", "spark", "mllib", "reports"],
) as dag:
    spark_job_tasks([ANALYSIS_JOB], cfg, cluster_name="dataplatform-energy-analysis")
