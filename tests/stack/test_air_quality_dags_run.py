"""The three air-quality DAGs end to end on the embedded stack, under `airflow dags test`:
generated station exports (several layouts: preamble, units in headers; the real CPCB
export is covered by tests/include and tests/spark_apps/air_quality) land, convert (bad rows quarantined)
and fill the ten MySQL tables; running the jobs again changes nothing."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from include.generators.air_quality import generate
from spark_apps.common.mysql import ResultsDb

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TABLES = ["aq_avg_ws", "aq_daily_pm", "aq_exceedance", "aq_monthly_stats", "aq_daily_aqi",
          "aq_top_polluted_days", "aq_diurnal_profile", "aq_completeness", "aq_wind_rose", "aq_temp_ozone_corr"]


def _dags_test(env, dag_id):
    run = subprocess.run([AIRFLOW, "dags", "test", dag_id, "2024-06-01"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    return run.stdout + run.stderr


def _fingerprint(db: ResultsDb) -> dict[str, tuple[int, str]]:
    conn = db.connect()
    out = {}
    try:
        with conn.cursor() as cur:
            for table in TABLES:
                cur.execute(f"SELECT * FROM `{table}`")
                rows = sorted(cur.fetchall(), key=repr)
                out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    finally:
        conn.close()
    return out


def test_land_convert_and_ten_jobs(airflow_env):
    cfg, env = airflow_env
    incoming = cfg.home / "incoming" / "air_quality"
    generated = generate(incoming, rows=2000, stations=2, seed=11, bad_share=0.004)
    assert sum(f.bad_rows for f in generated.files) > 0

    _dags_test(env, "air_quality_land")
    landed = sorted((cfg.lake_dir / "raw" / "air_quality").glob("*.csv"))
    assert len(landed) == len(generated.files)

    _dags_test(env, "air_quality_convert")
    parquet = cfg.lake_dir / "curated" / "air_quality_hourly"
    assert list(parquet.rglob("*.parquet"))
    assert any(p.name.startswith("station=") for p in parquet.iterdir())
    quarantined = [p for p in (cfg.lake_dir / "quarantine" / "air_quality").rglob("*") if p.is_file() and p.stat().st_size]
    assert quarantined, "malformed generated rows should be quarantined"

    log = _dags_test(env, "air_quality_jobs")
    db = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"])
    first = _fingerprint(db)
    assert all(count > 0 for count, _ in first.values()), first
    assert db.password not in log

    _dags_test(env, "air_quality_jobs")
    assert _fingerprint(db) == first, "a rerun must leave exactly the same rows"
