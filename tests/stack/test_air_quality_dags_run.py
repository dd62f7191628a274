"""The three air-quality DAGs end to end on the embedded stack, under `airflow dags test`, on
its S3 lake (s3a:// on moto, the code path EMR runs on s3://): generated station exports
(several layouts: preamble, units in headers; the real CPCB export is covered by
tests/include and tests/spark_apps/air_quality) land in the bucket, convert (bad rows
quarantined) to Parquet in the bucket and the stack's Cassandra node (the converted rows in
air_quality.hourly_readings) and fill the ten MySQL tables."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stack_helpers import Lake

from include.cassandra import schema as cassandra_schema
from include.generators.air_quality import generate
from include.platform import settings as platform_settings
from spark_apps.common.mysql import ResultsDb

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TABLES = ["aq_avg_ws", "aq_daily_pm", "aq_exceedance", "aq_monthly_stats", "aq_daily_aqi",
          "aq_top_polluted_days", "aq_diurnal_profile", "aq_completeness", "aq_wind_rose", "aq_temp_ozone_corr"]


def _dags_test(env, dag_id):
    run = subprocess.run([AIRFLOW, "dags", "test", dag_id, "2024-06-01"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    return run.stdout + run.stderr


def damaged_lines(generated) -> dict[tuple[str, int], str]:
    """``(file name, line number): reason`` of every damaged data line of the generated exports,
    read off the files by the generator's three kinds of damage (a date that does not exist, a
    typo in a number, a field lost), without the converter's code."""
    expected = {}
    for generated_file in generated.files:
        lines = Path(generated_file.path).read_text().splitlines()
        header_at = next(i for i, line in enumerate(lines) if line.startswith("From Date,To Date,"))
        header = lines[header_at].split(",")
        for number, line in enumerate(lines[header_at + 1:], start=header_at + 2):
            fields, key = line.split(","), (Path(generated_file.path).name, number)
            if fields[0] == "31-02-2023 25:00":
                expected[key] = "unparseable From Date: '31-02-2023 25:00'"
            elif "12..5" in fields:
                column = header[fields.index("12..5")]
                expected[key] = f"non-numeric {column}: '12..5'"
            elif len(fields) < len(header):
                expected[key] = f"wrong number of fields: expected {len(header)}, got {len(fields)}"
    return expected


def _counts(db: ResultsDb) -> dict[str, int]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            out = {}
            for table in TABLES:
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                out[table] = cur.fetchone()[0]
            return out
    finally:
        conn.close()


def _cassandra_readings(env) -> int:
    """Rows in the stack's air_quality.hourly_readings."""
    from spark_apps.common.cassandra import CassandraConfig, connect

    cluster, session = connect(CassandraConfig.from_env(env))
    try:
        return session.execute("SELECT COUNT(*) FROM air_quality.hourly_readings").one()[0]
    finally:
        cluster.shutdown()


def test_land_convert_and_ten_jobs(airflow_env):
    cfg, env = airflow_env
    incoming = cfg.home / "incoming" / "air_quality"
    generated = generate(incoming, rows=2000, stations=2, seed=11, bad_share=0.004)
    assert sum(f.bad_rows for f in generated.files) > 0

    _dags_test(env, "air_quality_land")
    lake = Lake(env)
    landed = sorted(k for k in lake.files("raw/air_quality") if k.endswith(".csv"))
    assert landed == sorted(Path(f.path).name for f in generated.files)
    assert not (cfg.lake_dir / "raw").exists(), "an S3 lake writes nothing into the local lake folder"

    # platform_bootstrap's Cassandra task (the conversion's Cassandra task needs the table).
    cassandra_schema.bootstrap(platform_settings.load().cassandra_replication, env)
    _dags_test(env, "air_quality_convert")
    assert _cassandra_readings(env) == json.loads(lake.read("quarantine/air_quality/_summary.json"))["good_rows"]
    parquet = lake.files("curated/air_quality_hourly")
    assert any(k.startswith("month=") and k.count("/") == 1 and k.endswith(".parquet") for k in parquet), parquet
    quarantined = {k: n for k, n in lake.files("quarantine/air_quality/rows").items() if k.endswith(".json") and n}
    assert quarantined, "malformed generated rows should be quarantined"
    bad_lines = b"".join(lake.read(f"quarantine/air_quality/rows/{k}") for k in quarantined).splitlines()
    # The quarantined rows are exactly the damaged lines, each with the reason its damage gives
    # (the reason names the column in the converter's terms: compare the quoted value).
    rows = {(Path(r["source_file"]).name, r["line_number"]): r["reason"] for r in map(json.loads, bad_lines)}
    expected = damaged_lines(generated)
    assert len(expected) == generated.bad_rows
    assert sorted(rows) == sorted(expected)
    for key, reason in expected.items():
        if reason.startswith("non-numeric"):
            assert rows[key].startswith("non-numeric ") and rows[key].endswith(": '12..5'"), (key, rows[key])
        else:
            assert reason in rows[key], (key, rows[key], reason)

    log = _dags_test(env, "air_quality_jobs")
    db = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"])
    counts = _counts(db)
    assert all(count > 0 for count in counts.values()), counts
    assert db.password not in log
    # That a rerun leaves the same rows is tests/spark_apps/air_quality/test_run_jobs.py's (same
    # code, same MariaDB): a second DAG run here would cost a spark-submit and prove nothing more.
