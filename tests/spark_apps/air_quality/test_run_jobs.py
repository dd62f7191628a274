"""run_jobs writes every analysis into its MySQL table; reruns leave identical tables."""
from __future__ import annotations

from pathlib import Path

import pytest

from include.generators.air_quality import generate
from spark_apps.air_quality import run_jobs
from spark_apps.air_quality.convert import convert
from spark_apps.air_quality.jobs import JOBS


def _table(db, table, keys):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}` ORDER BY " + ", ".join(f"`{k}`" for k in keys))
            return cur.fetchall()
    finally:
        conn.close()


def test_run_all_jobs_twice_is_idempotent(spark, results_db, tmp_path, monkeypatch):
    generate(tmp_path / "raw", rows=1200, stations=2, seed=3, bad_share=0.0)
    parquet = (tmp_path / "parquet").as_uri()
    convert(spark, (tmp_path / "raw").as_uri(), parquet, (tmp_path / "q").as_uri())

    first = run_jobs.run_jobs(spark, parquet, list(JOBS.values()), results_db, top_n=3)
    snapshot = {job.table: _table(results_db, job.table, job.keys) for job in JOBS.values()}
    assert all(len(snapshot[job.table]) == first[name] for name, job in JOBS.items())
    # CPCB exports state no AQI of their own: nothing to compare; every other table has rows.
    assert [name for name in JOBS if not first[name]] == ["aqi_vs_source_df"]
    assert first["top_polluted_days_df"] == 2 * 3  # two stations, top 3 days each

    second = run_jobs.run_jobs(spark, parquet, list(JOBS.values()), results_db, top_n=3)
    assert second == first
    assert {job.table: _table(results_db, job.table, job.keys) for job in JOBS.values()} == snapshot

    # One job alone through the command line entry, credentials from the environment.
    db = results_db
    monkeypatch.setenv("DP_RESULTS_DB_URL", f"mysql://{db.user}:{db.password}@{db.host}:{db.port}/{db.database}")
    assert run_jobs.main(["--parquet", parquet, "--jobs", "avg_ws_df"]) == {"avg_ws_df": first["avg_ws_df"]}
    assert _table(results_db, "aq_avg_ws", ["from_date"]) == snapshot["aq_avg_ws"]


def test_compute_and_count_counts_rows_and_evaluates_every_column(spark):
    df = spark.createDataFrame([(1,), (2,), (3,)], "x int")
    assert run_jobs.compute_and_count(df) == 3
    assert run_jobs.compute_and_count(df.where("x > 5")) == 0
    # A column nobody counts is still computed: a failing one makes the dry run fail.
    failing = df.selectExpr("x", "assert_true(x < 3) AS checked")
    with pytest.raises(Exception, match="is not true"):
        run_jobs.compute_and_count(failing)
    assert failing.count() == 3  # what a plain count() would have let through


def test_task_count_follows_the_cores(spark):
    # the test session runs on local[2]
    assert spark.sparkContext.defaultParallelism == 2
    assert run_jobs.task_count(spark) == 2 * run_jobs.TASKS_PER_CORE


def _stations_in(db, table) -> set[str]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT DISTINCT station FROM `{table}`")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_a_station_that_leaves_the_input_leaves_every_table_on_rerun(spark, fresh_results_db, tmp_path):
    """Each table is replaced as a whole: rows of a station no longer in the Parquet do not linger."""
    raw, parquet, quarantine = tmp_path / "raw", (tmp_path / "parquet").as_uri(), (tmp_path / "q").as_uri()
    files = generate(raw, rows=1200, stations=2, seed=3, bad_share=0.0).files
    convert(spark, raw.as_uri(), parquet, quarantine)
    run_jobs.run_jobs(spark, parquet, list(JOBS.values()), fresh_results_db, top_n=3)
    # aq_aqi_vs_source stays empty: CPCB exports state no AQI to compare with.
    per_station = [job for job in JOBS.values() if "station" in job.keys and job.name != "aqi_vs_source_df"]
    assert len(per_station) >= 8
    both = {job.table: _stations_in(fresh_results_db, job.table) for job in per_station}
    assert all(len(stations) == 2 for stations in both.values()), both

    # The second station's export is withdrawn from the raw zone; convert and the jobs rerun.
    (raw / Path(files[1].path).name).unlink()
    convert(spark, raw.as_uri(), parquet, quarantine)
    run_jobs.run_jobs(spark, parquet, list(JOBS.values()), fresh_results_db, top_n=3)
    after = {job.table: _stations_in(fresh_results_db, job.table) for job in per_station}
    remaining = spark.read.parquet(parquet).select("station").distinct().collect()
    assert len(remaining) == 1
    assert after == {table: {remaining[0].station} for table in both}
