"""The energy analysis DAG end to end on the embedded stack's S3 lake (s3a:// on moto): generated
joined readings in the layout of the streaming join uploaded to `energy/joined/`, `airflow dags
test` (spark-submit of the job: tables registered in the Derby metastore of the stack's home,
read by name over s3a), then the charts and the model in the bucket and the metrics row in
MySQL, as the Reports page reads them."""
from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

from PIL import Image
from stack_helpers import Lake

from include.reports.energy import REGRESSION_RUNS_TABLE
from spark_apps.common.mysql import ResultsDb
from tests.spark_apps.energy_analysis.helpers import generated, write_joined

AIRFLOW = str(Path(sys.executable).parent / "airflow")
RUN = date(2026, 11, 30)  # a manual run (`dags test`): the 28 days up to its own, 2026-11-03 .. 2026-11-30


def test_energy_analysis_dag_draws_charts_and_writes_metrics(airflow_env, spark, tmp_path):
    cfg, env = airflow_env
    lake = Lake(env)
    local = (tmp_path / "lake").as_uri()
    write_joined(spark, local, generated(start=date(2026, 11, 1), days=30, households=4, seed=5))
    assert lake.upload(tmp_path / "lake" / "energy" / "joined", "energy/joined")

    run = subprocess.run([AIRFLOW, "dags", "test", "energy_analysis", RUN.isoformat()],
                         env=env, capture_output=True, text=True, timeout=1200)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    db = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"])
    assert db.password not in output

    charts = lake.files(f"reports/{RUN}")
    assert sorted(charts) == ["daily_profile.png", "energy_vs_temperature.png", "weekly_profile.png"]
    for name in charts:
        Image.open(io.BytesIO(lake.read(f"reports/{RUN}/{name}"))).verify()
    assert any(key.startswith("stages/") for key in lake.files(f"models/energy_regression/{RUN}"))

    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT data_from, data_to, train_rows + test_rows, model_uri, temperature_coef "
                        f"FROM `{REGRESSION_RUNS_TABLE}` WHERE run_date = %s", (RUN,))
            rows = cur.fetchall()
    finally:
        conn.close()
    assert len(rows) == 1
    data_from, data_to, total, model_uri, slope = rows[0]
    assert (data_from, data_to) == (date(2026, 11, 3), date(2026, 11, 30))
    assert total == 28 * 24 * 4
    assert model_uri == f"{lake.uri}/models/energy_regression/{RUN}"
    assert -0.05 < slope < -0.03  # the generator's -0.04 (test_regression.py states the tolerance)
    # The catalog persisted in the stack's home: the Derby metastore the next run opens.
    assert (Path(env["DP_HOME"]) / "metastore" / "metastore_db").is_dir()
