import pytest

from spark_apps.common import data_quality


def test_a_run_is_recorded_once_and_a_rerun_replaces_it(fresh_results_db):
    db = fresh_results_db
    assert data_quality.read_run(db, "air_quality_convert", "raw/2026-12-01") is None
    data_quality.record_run(db, "air_quality_convert", "raw/2026-12-01", "s3a://lake/raw/2026-12-01", 100, 3,
                            {"bad timestamp": 1, "unparseable PM2.5": 2})
    data_quality.record_run(db, "air_quality_convert", "raw/2026-12-01", "s3a://lake/raw/2026-12-01", 120, 4,
                            {"bad timestamp": 1, "unparseable PM2.5": 3})
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM data_quality_runs")
            assert cur.fetchone()[0] == 1
    finally:
        conn.close()
    assert data_quality.read_run(db, "air_quality_convert", "raw/2026-12-01") == {
        "input_uri": "s3a://lake/raw/2026-12-01", "total_rows": 120, "bad_rows": 4,
        "reasons": {"unparseable PM2.5": 3, "bad timestamp": 1}}


def test_counts_that_do_not_add_up_are_refused(fresh_results_db):
    with pytest.raises(ValueError, match="bad_rows=2"):
        data_quality.record_run(fresh_results_db, "access_logs", "day", "file:///x", 10, 2, {"no match": 1})
