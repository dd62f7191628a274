"""Where the NRT energy analysis (issue 16) puts its results: one definition for the analysis DAG,
which writes them, and for the Reports page, which reads them.

* Charts: image files in the lake under ``reports/<run date>/`` (``reports/2026-12-02/scatter.png``),
  one folder per run date, named by the ISO date. ``reports/`` also holds other pipelines'
  folders (``reports/access_logs/``): only folders named by a date are energy runs.
* Regression metrics: one row per run in the MySQL table :data:`REGRESSION_RUNS_TABLE`, with at
  least the columns of :data:`REGRESSION_RUNS_COLUMNS` (the analysis job owns the DDL, like every
  job-owned table; a rerun of a date replaces its row).
"""
from __future__ import annotations

import re
from datetime import date
from typing import Iterable

from spark_apps.common.lake import join

REGRESSION_RUNS_TABLE = "energy_regression_runs"
# run_date (DATE, the key), the test split's metrics, the split sizes, where the model was saved and
# when the run finished (DATETIME, UTC).
REGRESSION_RUNS_COLUMNS = ("run_date", "rmse", "mae", "r2", "train_rows", "test_rows", "model_uri", "finished_at")
REPORTS_DIR = "reports"
CHART_SUFFIXES = (".png", ".svg")

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A chart file name as the page serves it: no folders, no hidden files.
_CHART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def charts_uri(lake_uri: str, run_date: date) -> str:
    """The folder the analysis run of ``run_date`` writes its charts to."""
    return join(lake_uri, REPORTS_DIR, run_date.isoformat())


def run_dates(folder_names: Iterable[str]) -> list[date]:
    """The run dates among the folder names under ``reports/``, newest first (other names ignored)."""
    dates = set()
    for name in folder_names:
        name = name.rstrip("/")
        if _ISO_DATE.match(name):
            try:
                dates.add(date.fromisoformat(name))
            except ValueError:  # 2026-13-40: looks like a date, is none
                continue
    return sorted(dates, reverse=True)


def is_chart_name(name: str) -> bool:
    """A file the page shows (and serves) as a chart: an image file directly in a run folder."""
    return bool(_CHART_NAME.match(name)) and name.lower().endswith(CHART_SUFFIXES)
