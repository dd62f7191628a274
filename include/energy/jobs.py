"""The energy analysis's job definition and the joined dataset's Asset, shared by its DAG (no I/O
at import: parse-time safe).

The job's arguments come from the contracts it writes to and reads from: the Reports page's
(include/reports/energy.py: ``reports/<run date>/``, the metrics table) and the streaming join's
lake layout (spark_apps/streaming/energy_weather/layout.py, through the catalog's table).
"""
from __future__ import annotations

import os

from airflow.sdk import Asset

from include.platform import settings as platform_settings
from include.platform.spark_jobs import SparkJob
from include.reports.energy import REGRESSION_RUNS_TABLE, REPORTS_DIR
from spark_apps.common.lake import join
from spark_apps.streaming.energy_weather.layout import JOINED_DIR

cfg = platform_settings.load()

# The joined readings the streaming join writes. The analysis runs daily and whenever this Asset
# has an event; a long-running query cannot emit one itself, so its health DAG
# (energy_weather_streaming_health.announce_new_joins) announces each batch of the join that wrote rows.
energy_joined = Asset(name="energy_joined", uri=platform_settings.asset_uri(join(cfg.lake_uri, JOINED_DIR)))

# A scheduled run of day D (@daily: midnight of D) analyses the ANALYSIS_DAYS complete days before
# D: four of each weekday for the weekly profile. A run on an `energy_joined` event or a manual one
# analyses the ANALYSIS_DAYS days up to and including its own day, today's readings so far too:
# that is what "on demand" asks for, and a fresh demo has no complete day yet. The run's date is
# D: its charts and its metrics row.
ANALYSIS_DAYS = int(os.environ.get("DP_ENERGY_ANALYSIS_DAYS", "28"))
# Not ``ds``: Airflow 3 gives runs triggered by an Asset event (and manual runs without one) no
# logical date, hence no ``ds``; every run has a ``run_after`` (a scheduled run's equals its
# logical date, midnight UTC).
_DAY = "((dag_run.logical_date or dag_run.run_after) | ds)"
_SCHEDULED = "dag_run.run_type == 'scheduled'"
RUN_DATE = "{{ %s }}" % _DAY
FROM_DATE = "{{ macros.ds_add(%s, -%d if %s else -%d) }}" % (_DAY, ANALYSIS_DAYS, _SCHEDULED, ANALYSIS_DAYS - 1)
TO_DATE = "{{ macros.ds_add(%s, -1 if %s else 0) }}" % (_DAY, _SCHEDULED)

# Where the lake's tables are registered (spark_apps/common/catalog.py): the Glue Data Catalog on
# EMR, else a Derby metastore in the stack's home (one application at a time: max_active_runs=1).
CATALOG = os.environ.get("DP_LAKE_CATALOG") or ("glue" if cfg.runner == "emr" else "derby")
METASTORE_DIR = os.environ.get("DP_METASTORE_DIR") or str(platform_settings.default_home() / "metastore")


def analysis_job(lake_uri: str = cfg.lake_uri, catalog: str = CATALOG, metastore_dir: str = METASTORE_DIR) -> SparkJob:
    args = [
        "--lake", lake_uri,
        "--run-date", RUN_DATE,
        "--from-date", FROM_DATE,
        "--to-date", TO_DATE,
        "--charts-uri", join(lake_uri, REPORTS_DIR, RUN_DATE),
        "--model-uri", join(lake_uri, "models", "energy_regression", RUN_DATE),
        "--metrics-table", REGRESSION_RUNS_TABLE,
        "--catalog", catalog,
    ]
    if catalog == "derby":
        args += ["--metastore-dir", metastore_dir]
    return SparkJob(name="energy_analysis", entry="spark_apps/energy_analysis/job.py", args=args)


ANALYSIS_JOB = analysis_job()
