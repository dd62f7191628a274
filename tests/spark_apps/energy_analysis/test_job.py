"""The analysis job end to end on generated joined data in a file:// lake and the real MariaDB:
tables registered by name, charts and model in the lake, one metrics row per run date that a
rerun replaces, read back the way the Reports page reads it."""
from __future__ import annotations

from datetime import date

import pytest
from pyspark.ml import PipelineModel

from include.reports import cards
from include.reports import results_db as reports_db
from include.reports.energy import REGRESSION_RUNS_COLUMNS, REGRESSION_RUNS_TABLE, charts_uri
from spark_apps.energy_analysis import charts, job, regression
from tests.spark_apps.energy_analysis.helpers import generated, write_joined
from tests.spark_apps.energy_analysis.test_charts import _decoded

RUN = date(2026, 11, 30)


def _rows(db, run_date):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE %s", (REGRESSION_RUNS_TABLE,))
            if not cur.fetchone():
                return []
            cur.execute(f"SELECT * FROM `{REGRESSION_RUNS_TABLE}` WHERE run_date = %s", (run_date,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def test_metrics_schema_has_the_columns_the_reports_page_reads():
    assert set(REGRESSION_RUNS_COLUMNS) <= set(regression.METRICS_SCHEMA.fieldNames())
    assert regression.METRICS_SCHEMA.fieldNames()[:len(REGRESSION_RUNS_COLUMNS)] == list(REGRESSION_RUNS_COLUMNS)


@pytest.fixture
def lake(spark, tmp_path):
    lake_uri = (tmp_path / "lake").as_uri()
    write_joined(spark, lake_uri, generated(start=date(2026, 11, 2), days=28, seed=16))
    return lake_uri


def _main(lake_uri, run_date=RUN, *extra):
    return job.main(["--lake", lake_uri, "--run-date", run_date.isoformat(),
                     "--charts-uri", charts_uri(lake_uri, run_date),
                     "--model-uri", f"{lake_uri}/models/energy_regression/{run_date}",
                     "--metrics-table", REGRESSION_RUNS_TABLE, "--catalog", "session", *extra])


def test_a_run_writes_charts_model_and_one_metrics_row_that_a_rerun_replaces(spark, lake, results_db, tmp_path,
                                                                            monkeypatch):
    db = results_db
    monkeypatch.setenv("DP_RESULTS_DB_URL", f"mysql://{db.user}:{db.password}@{db.host}:{db.port}/{db.database}")
    first = _main(lake, RUN, "--from-date", "2026-11-09")  # three weeks of the four
    assert first.rows == (21 * 24 + 1) * 6  # readings ending 11-09 00:00 .. 11-30 00:00

    # Charts: the three PNGs in reports/<run date>/, nothing else.
    folder = tmp_path / "lake" / "reports" / RUN.isoformat()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(charts.CHART_NAMES)
    for name in charts.CHART_NAMES:
        assert _decoded((folder / name).read_bytes()).size == (800, 450)

    # The model: a PipelineModel that loads and predicts what the run's fit predicts.
    model = PipelineModel.load(first.model_uri)
    probe = spark.createDataFrame([(10.0, 18, 0.0)], "temperature_c double, hour_of_day int, kwh_per_hour double")
    assert model.transform(probe).first().prediction == pytest.approx(first.fit.model.transform(probe).first().prediction)

    (row,) = _rows(db, RUN)
    assert row["rmse"] == pytest.approx(first.fit.rmse) and row["r2"] == pytest.approx(first.fit.r2)
    assert (row["train_rows"], row["test_rows"]) == (first.fit.train_rows, first.fit.test_rows)
    assert row["model_uri"] == first.model_uri
    assert (row["data_from"], row["data_to"]) == (date(2026, 11, 9), date(2026, 11, 30))
    assert row["temperature_coef"] == pytest.approx(first.fit.temperature_coef)

    # A rerun of the date on other data (all four weeks) replaces its row, does not add one.
    second = _main(lake, RUN)
    assert second.rows == 28 * 24 * 6
    (row,) = _rows(db, RUN)
    assert row["train_rows"] == second.fit.train_rows != first.fit.train_rows
    assert row["data_from"] == date(2026, 11, 2)

    # What the Reports page shows: the newest run, its charts and its metrics.
    conn = db.connect()
    try:
        latest = cards.latest_energy_run({RUN: sorted(charts.CHART_NAMES)}, reports_db.energy_regression_runs(conn))
    finally:
        conn.close()
    assert latest.run_date == RUN and latest.metrics["rmse"] == pytest.approx(second.fit.rmse)


def test_a_dry_run_writes_no_row_and_an_empty_lake_fails_clearly(spark, lake, results_db, tmp_path):
    result = _main(lake, date(2026, 11, 29), "--dry-run")
    assert result.rows > 0 and _rows(results_db, date(2026, 11, 29)) == []
    with pytest.raises(SystemExit, match="analysable readings"):
        _main(lake, date(2026, 11, 29), "--dry-run", "--from-date", "2027-01-01")
    # Another lake without joined data: the previous lake's table is not used.
    with pytest.raises(SystemExit, match="has written nothing"):
        _main((tmp_path / "empty-lake").as_uri(), date(2026, 11, 29), "--dry-run")
