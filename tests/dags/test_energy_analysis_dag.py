"""The energy analysis DAG: daily and on the `energy_joined` Asset, one Spark job whose arguments
render to the Reports page's folders and table for any run, also one without a logical date
(Asset-triggered and manual runs in Airflow 3)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "energy"), bundle_path=ROOT / "dags")
    assert bag.import_errors == {}
    return bag.dags["energy_analysis"]


def _args(task, logical_date, run_after, run_type):
    from airflow.sdk.execution_time import macros
    from airflow.utils.types import DagRunType

    context = {"dag_run": SimpleNamespace(logical_date=logical_date, run_after=run_after, run_type=DagRunType(run_type)),
               "macros": macros}
    rendered = task.render_template(list(task.application_args), context)
    return dict(zip(rendered[::2], rendered[1::2]))


# A scheduled run: the 28 complete days before its day; an Asset-triggered or manual one (no
# logical date in Airflow 3, or one given in the trigger form): the 28 days up to its own day.
RUNS = {
    "scheduled": (datetime(2026, 12, 2, tzinfo=timezone.utc), "scheduled", ("2026-11-04", "2026-12-01")),
    "asset": (None, "asset_triggered", ("2026-11-05", "2026-12-02")),
    "manual": (None, "manual", ("2026-11-05", "2026-12-02")),
    "manual-with-date": (datetime(2026, 12, 2, tzinfo=timezone.utc), "manual", ("2026-11-05", "2026-12-02")),
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_arguments_render_to_the_reports_contract(dag, run):
    from include.energy.jobs import cfg
    from include.reports.energy import REGRESSION_RUNS_TABLE, charts_uri

    logical_date, run_type, date_range = RUNS[run]
    task = dag.get_task("energy_analysis")
    assert task.application.endswith("/spark_apps/energy_analysis/job.py")
    args = _args(task, logical_date, datetime(2026, 12, 2, 0, 0, 5, tzinfo=timezone.utc), run_type)
    assert args["--run-date"] == "2026-12-02"
    assert (args["--from-date"], args["--to-date"]) == date_range
    assert args["--charts-uri"] == charts_uri(cfg.lake_uri, date(2026, 12, 2))
    assert args["--model-uri"] == f"{cfg.lake_uri.rstrip('/')}/models/energy_regression/2026-12-02"
    assert args["--metrics-table"] == REGRESSION_RUNS_TABLE
    assert args["--catalog"] == "derby" and args["--metastore-dir"].endswith("/metastore")


def test_schedule_is_daily_and_on_the_joined_asset(dag):
    from include.energy.jobs import energy_joined

    assert energy_joined.name in str(dag.timetable.asset_condition)
    assert "0 0 * * *" in dag.timetable.summary or "@daily" in dag.timetable.summary
    assert dag.max_active_runs == 1
    assert energy_joined.uri.endswith("/energy/joined")
