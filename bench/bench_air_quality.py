"""Benchmark of the air-quality batch pipeline on generated CPCB exports.

For each size in ``--rows`` one run reports, on the same generated data:

* conversion: time, MB/s of raw CSV and peak memory of ``convert.py``;
* each of the ten analyses alone, as its own application (one process and JVM each,
  like ten spark-submits); their sum is "ten jobs as ten apps", their maximum is the
  "slowest single job";
* the ten analyses in one application reading the Parquet once (``--jobs all``), and
  the ratio "ten jobs in one app / slowest single job" (target <= 2);
* DuckDB running the same ten queries on the same Parquet (2 threads), as a reference;
* with ``--dag`` (default on): the end-to-end DAG time against the same Spark work
  run directly, giving the orchestration overhead (target <= 30 %).

Every Spark run is a separate ``python -m`` process so that start-up and JVM memory
are measured as a submit would see them (local[*] = the machine's 2 cores); peak
memory is the largest sum of RSS over the process and all its children (the JVM),
sampled every 0.2 s. Analyses run with ``--dry-run``: every column of every result row
is computed (``noop`` sink) and counted, not written to MySQL, so that these numbers
measure Spark, not the database.

DAG time, method: a private embedded stack is started as the stack tests do
(``include.platform.stack.up(with_airflow=False)``: MariaDB results database and user of
its own, SQLite Airflow metadata DB, ``airflow db migrate``), ``build/`` is rebuilt
(``dp build``: the DAGs submit ``build/spark_apps.zip``), the generated CSVs are copied
into the stack's raw zone (landing is a file copy, not timed), and then

* DAG: wall time of ``airflow dags test air_quality_convert`` plus ``airflow dags test
  air_quality_jobs`` (default ``DP_AIR_QUALITY_MODE``), each a fresh process: DAG
  parsing, task runs, SparkSubmitOperator, the MySQL writes and the row-count tasks;
* direct: wall time of the same ``spark-submit`` commands (conversion, raw rows into the stack's
  Cassandra node, the ten jobs; built from the same ``SparkJob`` definitions, same ``local[2]``
  master, same arguments and bundle, same MySQL database) run straight from this script.

Overhead = DAG / direct - 1. ``dags test`` runs the tasks in its own process, so the
scheduler's polling latency of a real asset-triggered run (seconds, configurable) is
not included; everything else Airflow adds per task is.

    .venv/bin/python bench/bench_air_quality.py --rows 1000000,10000000
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.generators.air_quality import generate  # noqa: E402
from include.platform.stack import local_spark_driver_memory  # noqa: E402
from spark_apps.air_quality.jobs import (  # noqa: E402
    AQI_BREAKPOINTS,
    AQI_INDEX_BOUNDS,
    AQI_LABELS,
    AQI_POLLUTANTS,
    JOBS,
    MAIN_POLLUTANTS,
    MIN_HOURS_8H,
    MIN_HOURS_24H,
    PM10_24H_LIMIT,
    PM25_24H_LIMIT,
    WIND_SECTORS,
    WIND_SPEED_BANDS,
)
from spark_apps.air_quality.schema import MEASURE_COLUMNS, POLLUTANT_COLUMNS  # noqa: E402


class PeakMemory:
    """Largest RSS sum of a process tree while it runs (sampled)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_command(command: list[str], log_dir: Path, name: str, env: dict[str, str]) -> tuple[float, int]:
    """Run ``command``; return (seconds, peak bytes of its process tree)."""
    with open(log_dir / f"{name}.log", "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        with PeakMemory(proc.pid) as mem:
            code = proc.wait()
        seconds = time.perf_counter() - start
    if code:
        raise RuntimeError(f"{command} failed, see {log_dir / name}.log")
    return seconds, mem.peak


def run_app(module: str, args: list[str], log_dir: Path, name: str) -> tuple[float, int]:
    """Run ``python -m module args`` like a spark-submit; return (seconds, peak bytes).

    With the heap the embedded stack gives its local Spark applications.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable,
           "SPARK_DRIVER_MEMORY": local_spark_driver_memory()}
    return run_command([sys.executable, "-m", module, *args], log_dir, name, env)


# --- the ten analyses in DuckDB SQL (same definitions as spark_apps/air_quality/jobs.py) ---

def _sub_index_sql(pollutant: str, column: str) -> str:
    bounds = AQI_BREAKPOINTS[pollutant]
    c = f"GREATEST({column}, 0)"
    lows = [0.0, *bounds[:-1]]
    parts = [
        f"WHEN {c} <= {hi} THEN {i_lo} + {(i_hi - i_lo) / (hi - lo)} * ({c} - {lo})"
        for lo, hi, i_lo, i_hi in zip(lows, bounds, AQI_INDEX_BOUNDS, AQI_INDEX_BOUNDS[1:])
    ]
    severe = f"LEAST(500, 400 + {100.0 / (bounds[-1] - bounds[-2])} * ({c} - {bounds[-1]}))"
    return f"CASE WHEN {column} IS NULL THEN NULL {' '.join(parts)} ELSE {severe} END"


def duckdb_queries() -> dict[str, str]:
    h = "hourly"
    avg24 = ["pm25", "pm10", "no2", "so2", "nh3"]
    si = ", ".join(
        f"{_sub_index_sql(p, f'{p}_24h' if p in avg24 else f'{p}_8h_max')} AS si_{p}" for p in AQI_POLLUTANTS
    )
    si_cols = [f"si_{p}" for p in AQI_POLLUTANTS]
    n_avail = " + ".join(f"({c} IS NOT NULL)::INT" for c in si_cols)
    top = f"GREATEST({', '.join(si_cols)})"
    responsible = "COALESCE(" + ", ".join(f"CASE WHEN si_{p} = {top} THEN '{AQI_LABELS[p]}' END" for p in AQI_POLLUTANTS) + ")"
    categories = "CASE " + " ".join(
        f"WHEN ROUND({top}) <= {u} THEN '{n}'" for u, n in zip(AQI_INDEX_BOUNDS[1:], ["Good", "Satisfactory", "Moderate", "Poor", "Very Poor"])
    ) + " ELSE 'Severe' END"
    band = "CASE " + " ".join(f"WHEN ws >= {lo} THEN '{label}'" for lo, label in reversed(WIND_SPEED_BANDS)) + " END"
    sectors = "[" + ", ".join(f"'{s}'" for s in WIND_SECTORS) + "]"
    # Quoted: AT is a keyword in DuckDB ("AT TIME ZONE").
    pollutant_list = ", ".join(f'"{c}"' for c in POLLUTANT_COLUMNS)
    measures = ", ".join(f'"{c}"' for c in MEASURE_COLUMNS)
    measure_counts = ", ".join(f'COUNT("{c}") AS "{c}"' for c in MEASURE_COLUMNS)
    daily = f"SELECT station, CAST(from_ts AS DATE) AS day, AVG(pm25) AS pm25_mean, AVG(pm10) AS pm10_mean, COUNT(pm25) AS pm25_hours, COUNT(pm10) AS pm10_hours FROM {h} GROUP BY 1, 2"
    return {
        "avg_ws_df": f"SELECT from_ts AS from_date, AVG(ws) AS avg_ws FROM {h} GROUP BY 1",
        "daily_pm_df": daily,
        "exceedance_df": f"""
            WITH hours AS (SELECT station, COUNT(*) FILTER (pm25 > {PM25_24H_LIMIT}) AS pm25_hours_above,
                                  COUNT(*) FILTER (pm10 > {PM10_24H_LIMIT}) AS pm10_hours_above FROM {h} GROUP BY 1),
                 d AS ({daily}),
                 days AS (SELECT station,
                     COUNT(*) FILTER (pm25_hours >= {MIN_HOURS_24H} AND pm25_mean > {PM25_24H_LIMIT}) AS pm25_days_above,
                     COUNT(*) FILTER (pm10_hours >= {MIN_HOURS_24H} AND pm10_mean > {PM10_24H_LIMIT}) AS pm10_days_above,
                     COUNT(*) FILTER (pm25_hours >= {MIN_HOURS_24H}) AS pm25_days_assessed,
                     COUNT(*) FILTER (pm10_hours >= {MIN_HOURS_24H}) AS pm10_days_assessed FROM d GROUP BY 1)
            SELECT * FROM hours JOIN days USING (station)""",
        "monthly_stats_df": f"""
            SELECT station, month, pollutant, MIN(value) AS min_value, MAX(value) AS max_value,
                   AVG(value) AS mean_value, COUNT(value) AS n_values
            FROM (UNPIVOT (SELECT station, strftime(from_ts, '%Y-%m') AS month, {pollutant_list} FROM {h})
                  ON {pollutant_list} INTO NAME pollutant VALUE value)
            GROUP BY 1, 2, 3""",
        "daily_aqi_df": f"""
            WITH r AS (
                SELECT station, CAST(from_ts AS DATE) AS day, {', '.join(AQI_POLLUTANTS)},
                  CASE WHEN COUNT(co) OVER w >= {MIN_HOURS_8H} THEN AVG(co) OVER w END AS co_8h,
                  CASE WHEN COUNT(ozone) OVER w >= {MIN_HOURS_8H} THEN AVG(ozone) OVER w END AS ozone_8h
                FROM {h}
                WINDOW w AS (PARTITION BY station ORDER BY from_ts RANGE BETWEEN INTERVAL 7 HOURS PRECEDING AND CURRENT ROW)),
            d AS (SELECT station, day,
                  {', '.join(f'CASE WHEN COUNT({p}) >= {MIN_HOURS_24H} THEN AVG({p}) END AS {p}_24h' for p in avg24)},
                  MAX(co_8h) AS co_8h_max, MAX(ozone_8h) AS ozone_8h_max FROM r GROUP BY 1, 2),
            s AS (SELECT *, {si} FROM d)
            SELECT station, day, CAST(ROUND({top}) AS INT) AS aqi, {categories} AS category,
                   {responsible} AS responsible_pollutant, {n_avail} AS n_pollutants
            FROM s WHERE {n_avail} >= 3 AND (si_pm25 IS NOT NULL OR si_pm10 IS NOT NULL)""",
        "top_polluted_days_df": f"""
            SELECT station, rank, day, pm25_mean, pm25_hours FROM (
              SELECT *, ROW_NUMBER() OVER (PARTITION BY station ORDER BY pm25_mean DESC, day) AS rank
              FROM ({daily}) WHERE pm25_mean IS NOT NULL) WHERE rank <= 10""",
        "diurnal_profile_df": "SELECT station, hour(from_ts) AS hour_of_day, "
        + ", ".join(f"AVG({p}) AS {p}_mean" for p in MAIN_POLLUTANTS) + f" FROM {h} GROUP BY 1, 2",
        "completeness_df": f"""
            SELECT station, month, column_name, n_values,
                   day(last_day(CAST(month || '-01' AS DATE))) * 24 AS hours_in_month,
                   n_values / (day(last_day(CAST(month || '-01' AS DATE))) * 24) AS completeness
            FROM (UNPIVOT (SELECT station, strftime(from_ts, '%Y-%m') AS month, {measure_counts} FROM {h} GROUP BY 1, 2)
                  ON {measures} INTO NAME column_name VALUE n_values)""",
        "wind_rose_df": f"""
            SELECT station, sector_index, {sectors}[sector_index + 1] AS sector, speed_band, hours,
                   hours / SUM(hours) OVER (PARTITION BY station) AS share
            FROM (SELECT station, CAST(floor(((wd + 11.25) % 360 + 360) % 360 / 22.5) AS INT) AS sector_index,
                         {band} AS speed_band, COUNT(*) AS hours
                  FROM {h} WHERE ws IS NOT NULL AND ws >= 0 AND wd BETWEEN 0 AND 360 GROUP BY 1, 2, 3)""",
        "temp_ozone_corr_df": f"""
            SELECT station, strftime(from_ts, '%Y-%m') AS month, COUNT(*) AS n_pairs,
                   CASE WHEN COUNT(*) >= 3 THEN corr("at", ozone) END AS r_at_ozone
            FROM {h} WHERE "at" IS NOT NULL AND ozone IS NOT NULL GROUP BY 1, 2""",
    }


def run_duckdb(parquet_dir: Path) -> tuple[float, int, dict[str, int]]:
    import duckdb

    proc = psutil.Process()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    start = time.perf_counter()
    with PeakMemory(proc.pid) as mem:
        con.execute(
            f"CREATE VIEW hourly AS SELECT * FROM read_parquet('{parquet_dir}/**/*.parquet', hive_partitioning = true)"
        )
        rows = {name: con.execute(f"SELECT COUNT(*) FROM ({sql})").fetchone()[0] for name, sql in duckdb_queries().items()}
    seconds = time.perf_counter() - start
    con.close()
    return seconds, mem.peak, rows


def _stack_env() -> dict[str, str]:
    """This process's environment without any stack/Airflow connection settings of the user."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DP_"))}


def bench_dag(raw_dir: Path, base: Path, logs: Path) -> dict:
    """End-to-end DAG time vs the same spark-submits run directly (see the module docstring)."""
    from include.cassandra import schema as cassandra_schema
    from include.platform import settings as platform_settings
    from include.platform import stack
    from include.platform.spark_jobs import SparkJob
    from spark_apps.common import lake
    from spark_apps.common.mysql import ResultsDb

    subprocess.run([str(Path(sys.executable).parent / "dp"), "build"], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    suffix = uuid.uuid4().hex[:8]
    cfg = stack.StackConfig(
        home=base / "stack", airflow_port=stack.free_port(), kafka_port=stack.free_port(),
        kafka_controller_port=stack.free_port(), cassandra_port=stack.free_port(),
        cassandra_storage_port=stack.free_port(), moto_port=stack.free_port(), metadata_db="sqlite",
        results_db=f"dp_bench_{suffix}", results_user=f"dp_bench_{suffix}",
    )
    stack_env = stack.up(cfg, with_airflow=False, echo=lambda _: None)
    try:
        env = {**_stack_env(), **stack_env}
        # platform_bootstrap's Cassandra part: the conversion DAG's second task writes the raw
        # rows into air_quality.hourly_readings.
        cassandra_schema.bootstrap(platform_settings.load().cassandra_replication, env)
        airflow = str(Path(sys.executable).parent / "airflow")
        run_command([airflow, "db", "migrate"], logs, "airflow_db_migrate", env)
        raw_zone = cfg.lake_dir / "raw" / "air_quality"
        shutil.rmtree(raw_zone, ignore_errors=True)
        shutil.copytree(raw_dir, raw_zone)

        dag = {}
        for dag_id in ("air_quality_convert", "air_quality_jobs"):
            dag[dag_id] = run_command([airflow, "dags", "test", dag_id, "2024-06-01"], logs, f"dag_{dag_id}", env)

        # The same Spark work without Airflow: the DAGs' SparkJob definitions, submitted directly.
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            settings = platform_settings.load()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        lake_uri = settings.lake_uri
        jobs = [
            SparkJob(name="air_quality_convert", entry="spark_apps/air_quality/convert.py", args=[
                "--raw", lake.join(lake_uri, "raw", "air_quality"),
                "--parquet", lake.join(lake_uri, "curated", "air_quality_hourly"),
                "--quarantine", lake.join(lake_uri, "quarantine", "air_quality"), "--max-bad-share", "0.01"]),
            SparkJob(name="air_quality_to_cassandra", entry="spark_apps/air_quality/to_cassandra.py", args=[
                "--raw", lake.join(lake_uri, "raw", "air_quality"), "--max-bad-share", "0.01",
                "--cassandra-contact-points", "127.0.0.1", "--cassandra-port", str(cfg.cassandra_port)]),
            SparkJob(name="air_quality_all_jobs", entry="spark_apps/air_quality/run_jobs.py", args=[
                "--parquet", lake.join(lake_uri, "curated", "air_quality_hourly"), "--jobs", "all", "--top-n", "10"]),
        ]
        master = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])["host"]
        spark_submit = str(Path(sys.executable).parent / "spark-submit")
        direct_env = {**env, "DP_RESULTS_DB_URL": env["AIRFLOW_CONN_MYSQL_RESULTS"]}
        direct = {
            job.name: run_command([spark_submit, "--master", master, *job.submit_args(settings.spark_apps_uri)],
                                  logs, f"direct_{job.name}", direct_env)
            for job in jobs
        }
        conn = ResultsDb.from_url(env["AIRFLOW_CONN_MYSQL_RESULTS"]).connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM aq_daily_aqi")
                aqi_rows = cur.fetchone()[0]
        finally:
            conn.close()
    finally:
        stack.down(cfg, echo=lambda _: None)
        stack.drop_results_db(cfg)
    return {
        "dag_convert_s": dag["air_quality_convert"][0], "dag_jobs_s": dag["air_quality_jobs"][0],
        "dag_mem": max(m for _, m in dag.values()),
        "direct_convert_s": direct["air_quality_convert"][0] + direct["air_quality_to_cassandra"][0], "direct_jobs_s": direct["air_quality_all_jobs"][0],
        "direct_mem": max(m for _, m in direct.values()), "mode": settings.air_quality_mode,
        "aqi_rows_in_mysql": aqi_rows,
    }


def ratios(r: dict) -> dict:
    """Derived figures of one size's results (the targets are checked on these)."""
    slowest = max(r["single_s"].values())
    out = {
        "convert_mb_s": r["raw_mb"] / r["convert_s"],
        "slowest_job": max(r["single_s"], key=r["single_s"].get),
        "slowest_single_s": slowest,
        "one_app_vs_slowest": r["one_s"] / slowest,
        "one_app_vs_duckdb": r["one_s"] / r["duck_s"],
    }
    if r["separate_s"] is not None:  # all ten jobs were run alone
        out.update(separate_vs_one_app=r["separate_s"] / r["one_s"],
                   faster_mode="one_app" if r["one_s"] <= r["separate_s"] else "per_job")
    if "dag_convert_s" in r:
        dag = r["dag_convert_s"] + r["dag_jobs_s"]
        direct = r["direct_convert_s"] + r["direct_jobs_s"]
        out.update(dag_s=dag, direct_s=direct, overhead=dag / direct - 1)
    return out


def bench(rows: int, workdir: Path, stations: int, with_dag: bool = True, single_jobs=JOBS) -> dict:
    base = workdir / f"rows_{rows}"
    shutil.rmtree(base, ignore_errors=True)
    logs = base / "logs"
    logs.mkdir(parents=True)
    t = time.perf_counter()
    generated = generate(base / "raw", rows=rows, stations=stations, seed=1, bad_share=0.001)
    gen_seconds = time.perf_counter() - t
    raw_mb = sum(p.stat().st_size for p in (base / "raw").glob("*.csv")) / 1e6
    parquet = base / "parquet"
    conv_s, conv_mem = run_app(
        "spark_apps.air_quality.convert",
        ["--raw", (base / "raw").as_uri(), "--parquet", parquet.as_uri(), "--quarantine", (base / "q").as_uri(),
         "--no-record"],
        logs, "convert",
    )
    print(f"  convert {conv_s:.1f} s", flush=True)
    parquet_mb = sum(p.stat().st_size for p in parquet.rglob("*.parquet")) / 1e6
    single_s, separate_mem = {}, 0
    for name in single_jobs:
        s, m = run_app("spark_apps.air_quality.run_jobs", ["--parquet", parquet.as_uri(), "--jobs", name, "--dry-run"], logs, name)
        single_s[name] = s
        separate_mem = max(separate_mem, m)
        print(f"  {name} alone {s:.1f} s", flush=True)
    one_s, one_mem = run_app("spark_apps.air_quality.run_jobs", ["--parquet", parquet.as_uri(), "--jobs", "all", "--dry-run"], logs, "all")
    print(f"  ten jobs in one app {one_s:.1f} s", flush=True)
    duck_s, duck_mem, _ = run_duckdb(parquet)
    result = {
        "rows": rows, "stations": stations, "bad_rows": generated.bad_rows, "gen_s": gen_seconds, "raw_mb": raw_mb, "parquet_mb": parquet_mb,
        "convert_s": conv_s, "convert_mem": conv_mem, "single_s": single_s,
        "separate_s": sum(single_s.values()) if len(single_s) == len(JOBS) else None,
        "separate_mem": separate_mem, "one_s": one_s, "one_mem": one_mem, "duck_s": duck_s, "duck_mem": duck_mem,
        "load_avg": os.getloadavg(), "driver_memory": local_spark_driver_memory(),
    }
    if with_dag:
        result.update(bench_dag(base / "raw", base, logs))
    return result


def markdown(results: list[dict]) -> str:
    gb = 1024 ** 3
    lines = [
        "| rows | stations | raw CSV MB | Parquet MB | convert s | convert MB/s | slowest single job s | 10 jobs, 10 apps s | 10 jobs, 1 app s "
        "| 1 app / slowest job | DuckDB 10 queries s | Spark 1 app / DuckDB | peak GB convert / 1 job / 1 app / DuckDB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        d = ratios(r)
        lines.append(
            f"| {r['rows']:,} | {r['stations']} | {r['raw_mb']:.0f} | {r['parquet_mb']:.0f} | {r['convert_s']:.1f} | {d['convert_mb_s']:.1f} "
            f"| {d['slowest_single_s']:.1f} ({d['slowest_job']}{'' if r['separate_s'] is not None else ', the only one run alone'}) "
            f"| {'not run' if r['separate_s'] is None else format(r['separate_s'], '.1f')} | {r['one_s']:.1f} "
            f"| {d['one_app_vs_slowest']:.2f}x | {r['duck_s']:.1f} | {d['one_app_vs_duckdb']:.1f}x "
            f"| {r['convert_mem'] / gb:.2f} / {r['separate_mem'] / gb:.2f} / {r['one_mem'] / gb:.2f} / {r['duck_mem'] / gb:.2f} |"
        )
    lines += ["", "| rows | " + " | ".join(JOBS) + " |", "|---:|" + "---:|" * len(JOBS)]
    for r in results:
        lines.append(f"| {r['rows']:,} | " + " | ".join(
            f"{r['single_s'][n]:.1f}" if n in r["single_s"] else "-" for n in JOBS) + " |")
    dag_rows = [r for r in results if "dag_convert_s" in r]
    if dag_rows:
        lines += [
            "",
            "| rows | mode | DAG convert s | DAG jobs s | DAG total s | direct convert s | direct jobs s | direct total s | orchestration overhead | peak GB DAG / direct |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in dag_rows:
            d = ratios(r)
            lines.append(
                f"| {r['rows']:,} | {r['mode']} | {r['dag_convert_s']:.1f} | {r['dag_jobs_s']:.1f} | {d['dag_s']:.1f} "
                f"| {r['direct_convert_s']:.1f} | {r['direct_jobs_s']:.1f} | {d['direct_s']:.1f} | {100 * d['overhead']:+.0f} % "
                f"| {r['dag_mem'] / gb:.2f} / {r['direct_mem'] / gb:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma list of data-row counts")
    parser.add_argument("--stations", type=int, default=0,
                        help="stations to spread the rows over (default: one per 50,000 rows, at least 20: "
                             "about 5.7 years of hourly data per station, like real exports)")
    parser.add_argument("--workdir", default="/tmp/aq_bench")
    parser.add_argument("--no-dag", action="store_true", help="skip the DAG vs direct spark-submit part")
    parser.add_argument("--single-jobs", default=",".join(JOBS),
                        help="comma list of the jobs to also run alone (default: all ten); at 10 M rows running "
                             "all ten alone takes about an hour here, so e.g. only the slowest one")
    args = parser.parse_args(argv)
    results = []
    for rows in [int(r) for r in args.rows.split(",")]:
        print(f"rows={rows:,}", flush=True)
        single_jobs = [j for j in args.single_jobs.split(",") if j]
        unknown = set(single_jobs) - set(JOBS)
        if unknown:
            parser.error(f"unknown jobs {sorted(unknown)}; choose from {list(JOBS)}")
        stations = args.stations or max(20, rows // 50_000)
        result = bench(rows, Path(args.workdir), stations, with_dag=not args.no_dag, single_jobs=single_jobs)
        print(f"rows={rows:,}: generated in {result['gen_s']:.0f} s, {result['bad_rows']} malformed rows, "
              f"load average during the run {result['load_avg'][1]:.1f} (5 min)", flush=True)
        print(json.dumps({**result, **ratios(result)}, default=str), flush=True)
        results.append(result)
    print(f"\nmachine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GB RAM; "
          f"Spark local[*] with a {local_spark_driver_memory()} heap (SPARK_DRIVER_MEMORY, as the embedded stack sets it); "
          "analyses computed in full but not written (--dry-run), except in the DAG part\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
