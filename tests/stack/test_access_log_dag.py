"""The access-log DAG end to end on the embedded stack: generated day in the lake,
`airflow dags test`, results in MySQL that match an independent count."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from include.generators.access_logs import write_day
from spark_apps.common.mysql import ResultsDb

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAY = date(2024, 1, 15)


def _query(db, sql, params=()):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_access_log_dag_analyses_a_generated_day(airflow_env):
    cfg, env = airflow_env
    raw = cfg.lake_dir / "raw" / "access_logs"
    write_day(raw, DAY, lines=3000, files=2, gzip_files=True, seed=7, malformed_share=0.01)
    files = sorted((raw / f"date={DAY}").glob("*.log*"))
    assert files

    # the run of the 16th analyses the complete day before
    run = subprocess.run([AIRFLOW, "dags", "test", "access_log_analysis", (DAY + timedelta(days=1)).isoformat()],
                         env=env, capture_output=True, text=True, timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    secret = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"]).password
    assert secret not in output

    # Every line of the files is accounted for: parsed or quarantined, none lost.
    total = 0
    for path in files:
        with gzip.open(path, "rb") as fh:
            total += sum(1 for _ in fh)

    db = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"])
    summary = _query(db, "SELECT * FROM access_log_daily_summary WHERE log_date = %s", (DAY,))
    assert len(summary) == 1
    by_status = dict(_query(db, "SELECT status, responses FROM access_log_4xx_by_status WHERE log_date = %s", (DAY,)))
    client_errors = _query(db, "SELECT client_error_responses FROM access_log_daily_summary WHERE log_date = %s", (DAY,))
    assert sum(by_status.values()) == client_errors[0][0] > 0

    report = json.loads((cfg.lake_dir / "reports" / "access_logs" / f"date={DAY}" / "summary.json").read_text())
    assert report["quarantined_lines"] > 0
    assert report["parsed_lines"] + report["quarantined_lines"] == total
