"""The access-log DAG end to end on the embedded stack's S3 lake (s3a:// on moto, the code
path EMR runs on s3://): a generated day uploaded to the bucket, `airflow dags test` (the
S3KeySensor finds it, the Spark job reads it over s3a), results in MySQL that match an
independent count, summary and quarantine in the bucket. And `dp demo-data` /
`dp stream-stop` work on the S3 lake."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from stack_helpers import Lake

from include.generators.access_logs import write_day
from spark_apps.common.mysql import ResultsDb

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAY = date(2024, 1, 15)


def test_access_log_dag_analyses_a_generated_day(airflow_env, tmp_path):
    cfg, env = airflow_env
    lake = Lake(env)
    files = write_day(tmp_path, DAY, lines=3000, files=2, gzip_files=True, seed=7, malformed_share=0.01)
    assert len(lake.upload(tmp_path, "raw/access_logs")) == len(files) == 2

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
    summary = db.query("SELECT * FROM access_log_daily_summary WHERE log_date = %s", (DAY,))
    assert len(summary) == 1
    by_status = dict(db.query("SELECT status, responses FROM access_log_4xx_by_status WHERE log_date = %s", (DAY,)))
    client_errors = db.query("SELECT client_error_responses FROM access_log_daily_summary WHERE log_date = %s", (DAY,))
    assert sum(by_status.values()) == client_errors[0][0] > 0

    report = json.loads(lake.read(f"reports/access_logs/date={DAY}/summary.json"))
    assert report["quarantined_lines"] > 0
    assert report["parsed_lines"] + report["quarantined_lines"] == total
    assert report["quarantine_uri"] == f"{lake.uri}/quarantine/access_logs/date={DAY}"
    quarantine = lake.files(f"quarantine/access_logs/date={DAY}")
    bad = [json.loads(line) for key in sorted(quarantine) if key.startswith("part-")
           for line in lake.read(f"quarantine/access_logs/date={DAY}/{key}").splitlines()]
    assert len(bad) == report["quarantined_lines"]
    assert {b["file"] for b in bad} <= {f"{lake.uri}/raw/access_logs/date={DAY}/{p.name}" for p in files}


def test_demo_data_and_stream_stop_on_the_s3_lake(embedded_stack, tmp_path):
    """`dp demo-data` puts yesterday's logs into the bucket (once), `dp stream-stop` its markers."""
    cfg, env = embedded_stack
    lake = Lake(env)
    dp_env = {**env, "DP_HOME": str(cfg.home), "DP_AIR_QUALITY_INCOMING": str(tmp_path / "incoming")}

    def dp(*args):
        run = subprocess.run([str(Path(sys.executable).parent / "dp"), *args], env=dp_env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    yesterday = date.today() - timedelta(days=1)
    out = dp("demo-data", "--log-lines", "400", "--air-quality-rows", "40")
    assert f"{lake.uri}/raw/access_logs/date={yesterday}" in out
    day = lake.files(f"raw/access_logs/date={yesterday}")
    assert sorted(day) == ["web-1.log.gz", "web-2.log.gz"]
    assert sum(1 for _ in gzip.decompress(lake.read(f"raw/access_logs/date={yesterday}/web-1.log.gz")).splitlines()) == 200
    assert list((tmp_path / "incoming").glob("*.csv"))
    assert "access logs" not in dp("demo-data", "--log-lines", "400", "--air-quality-rows", "40"), "a day is never rewritten"

    # Two jobs have published progress; stop-requests go next to it.
    for job in ("job_a", "job_b"):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"{lake.prefix}/streaming/_status/{job}/q.json", Body=b"{}")
    assert dp("stream-stop").splitlines() == ["stop requested: job_a", "stop requested: job_b"]
    assert set(lake.files("streaming/_status")) == {"job_a/q.json", "job_a/STOP", "job_b/q.json", "job_b/STOP"}
    # --wait returns once a job has written STOPPED (after its graceful stop), and fails on one that has not.
    lake.s3.put_object(Bucket=lake.bucket, Key=f"{lake.prefix}/streaming/_status/job_a/STOPPED", Body=b"{}")
    assert dp("stream-stop", "--wait", "--timeout", "5", "job_a").splitlines() == ["stop requested: job_a",
                                                                                  "stopped: job_a"]
    waited = subprocess.run([str(Path(sys.executable).parent / "dp"), "stream-stop", "--wait", "--timeout", "2",
                             "job_b"], env=dp_env, capture_output=True, text=True, timeout=300)
    assert waited.returncode != 0 and "not stopped after 2s: job_b" in waited.stderr
