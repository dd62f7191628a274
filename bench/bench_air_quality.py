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
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.air_quality.landing import land_files  # noqa: E402
from include.generators.air_quality import STATIONS, generate, write_kaggle_files  # noqa: E402
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
from spark_apps.air_quality.reader import HEAD_CHARS, KAGGLE_LAYOUTS, KAGGLE_STATIONS, plan_file  # noqa: E402
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


def _duckdb_file_select(plan, stations: dict[str, tuple[str, str | None]]) -> str | None:
    """DuckDB's SELECT of one raw file's hourly rows in the curated columns, or None when the file
    holds no hourly rows (stations.csv, daily files, a file the platform quarantines whole).

    The per-file header mapping is the platform's own (reader.plan_file: where the header is, which
    canonical column each field is, the station and city of a CPCB file), so that DuckDB does the
    same conversion; the typing of the cells is DuckDB's (TRY_CAST / try_strptime: a malformed cell
    becomes NULL and a row without a time is dropped, where the platform quarantines it with a reason).
    """
    if plan.problem or plan.daily or plan.layout == KAGGLE_STATIONS:
        return None
    names = [f"c{i}" for i in range(max(plan.header_fields, plan.width))]
    at = {name: f"c{i}" for i, name in enumerate(plan.columns) if name}

    def cell(name: str) -> str:
        return at.get(name, "NULL")

    def ts(name: str) -> str:
        if name not in at:
            return "NULL::TIMESTAMP"
        c = at[name]
        return (f"COALESCE(try_strptime({c}, '%d-%m-%Y %H:%M'), try_strptime({c}, '%Y-%m-%d %H:%M:%S'), "
                f"try_strptime({c}, '%Y-%m-%d %H:%M'), try_strptime({c}, '%d-%m-%Y %H:%M:%S'))")

    def literal(value: str | None) -> str:
        return "NULL" if value is None else "'" + value.replace("'", "''") + "'"

    if plan.layout in KAGGLE_LAYOUTS and KAGGLE_LAYOUTS[plan.layout][0] == "city":
        station, city = cell("city"), cell("city")
    elif plan.layout in KAGGLE_LAYOUTS:  # station_hour: names from stations.csv, else the id
        lookup = " ".join(f"WHEN {literal(k)} THEN {literal(v[0])}" for k, v in stations.items())
        cities = " ".join(f"WHEN {literal(k)} THEN {literal(v[1])}" for k, v in stations.items())
        sid = cell("station_id")
        station = f"CASE {sid} {lookup} ELSE {sid} END" if stations else sid
        city = f"CASE {sid} {cities} END" if stations else "NULL"
    else:
        station, city = literal(plan.station), literal(plan.city)
    measures = ", ".join(f"TRY_CAST({cell(m)} AS DOUBLE) AS \"{m}\"" for m in MEASURE_COLUMNS)
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    path = plan.path.removeprefix("file://")
    return (f"SELECT {ts('from_ts')} AS from_ts, {ts('to_ts')} AS to_ts, {measures}, {city} AS city, "
            f"TRY_CAST({cell('source_aqi')} AS DOUBLE) AS source_aqi, {cell('source_aqi_bucket')} AS source_aqi_bucket, "
            f"'{path}' AS source_file, {station} AS station "
            f"FROM read_csv('{path}', skip = {plan.header_line}, header = false, columns = {columns}, "
            "null_padding = true, ignore_errors = true, quote = '\"', "
            "nullstr = ['', 'None', 'NA', 'n/a', 'NaN', '-', 'null'])")


def run_duckdb_end_to_end(raw_dir: Path, out_dir: Path) -> tuple[float, int]:
    """DuckDB from the raw CSV: the same hourly conversion (curated columns, month partitions,
    rows sorted by station and time) written as Parquet, then the ten queries on it; one
    connection, 2 threads. Returns seconds and peak memory."""
    import duckdb

    shutil.rmtree(out_dir, ignore_errors=True)
    proc = psutil.Process()
    start = time.perf_counter()
    with PeakMemory(proc.pid) as mem:
        plans = []
        for path in sorted(p for p in raw_dir.rglob("*.csv")):
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                plans.append(plan_file(path.as_uri(), f.read(HEAD_CHARS), path.stat().st_size))
        stations = {k: v for p in plans if p.layout == KAGGLE_STATIONS for k, v in p.stations.items()}
        selects = [s for s in (_duckdb_file_select(p, stations) for p in plans) if s]
        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            f"COPY (SELECT *, strftime(from_ts, '%Y-%m') AS month FROM ({' UNION ALL '.join(selects)}) "
            f"WHERE from_ts IS NOT NULL AND station IS NOT NULL ORDER BY station, from_ts) "
            f"TO '{out_dir}' (FORMAT parquet, PARTITION_BY (month))")
        con.execute(f"CREATE VIEW hourly AS SELECT * FROM read_parquet('{out_dir}/**/*.parquet', hive_partitioning = true)")
        for sql in duckdb_queries().values():
            con.execute(f"SELECT COUNT(*) FROM ({sql})").fetchone()
        con.close()
    return time.perf_counter() - start, mem.peak


def parquet_files(parquet_dir: Path) -> tuple[int, float]:
    """Number and median size (bytes) of the Parquet files of a dataset."""
    sizes = sorted(p.stat().st_size for p in parquet_dir.rglob("*.parquet"))
    return len(sizes), statistics.median(sizes) if sizes else 0.0


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
        "end_to_end_s": r["land_s"] + r["convert_s"] + r["one_s"],
    }
    out["end_to_end_vs_duckdb"] = out["end_to_end_s"] / r["duck_e2e_s"]
    if r["separate_s"] is not None:  # all ten jobs were run alone
        out.update(separate_vs_one_app=r["separate_s"] / r["one_s"],
                   faster_mode="one_app" if r["one_s"] <= r["separate_s"] else "per_job")
    if "dag_convert_s" in r:
        dag = r["dag_convert_s"] + r["dag_jobs_s"]
        direct = r["direct_convert_s"] + r["direct_jobs_s"]
        out.update(dag_s=dag, direct_s=direct, overhead=dag / direct - 1)
    return out


def bench(rows: int, workdir: Path, stations: int, with_dag: bool = True, single_jobs=JOBS, layout: str = "cpcb") -> dict:
    """One size of one input layout: ``cpcb`` (CPCB station exports, ``rows`` data rows) or
    ``kaggle`` (Kaggle's five files; ``rows`` station-hour rows, plus their city-hour and daily files)."""
    base = workdir / f"{layout}_{rows}"
    shutil.rmtree(base, ignore_errors=True)
    logs = base / "logs"
    logs.mkdir(parents=True)
    t = time.perf_counter()
    if layout == "kaggle":
        generated = write_kaggle_files(base / "source", stations=stations, days=max(1, rows // (24 * stations)), seed=1)
    else:
        generated = generate(base / "source", rows=rows, stations=stations, seed=1, bad_share=0.001)
    gen_seconds = time.perf_counter() - t
    # Landing as the DAG does it (land_files: the exports copied into the raw zone), timed: it is
    # part of "land + convert + jobs".
    t = time.perf_counter()
    land_files(base / "source", base / "raw")
    land_s = time.perf_counter() - t
    raw_mb = sum(p.stat().st_size for p in (base / "raw").glob("*.csv")) / 1e6
    parquet = base / "parquet"
    conv_s, conv_mem = run_app(
        "spark_apps.air_quality.convert",
        ["--raw", (base / "raw").as_uri(), "--parquet", parquet.as_uri(), "--daily", (base / "daily").as_uri(),
         "--quarantine", (base / "q").as_uri(), "--no-record"],
        logs, "convert",
    )
    print(f"  convert {conv_s:.1f} s", flush=True)
    parquet_mb = sum(p.stat().st_size for p in parquet.rglob("*.parquet")) / 1e6
    n_files, median_file = parquet_files(parquet)
    single_s, separate_mem = {}, 0
    for name in single_jobs:
        s, m = run_app("spark_apps.air_quality.run_jobs", ["--parquet", parquet.as_uri(), "--jobs", name, "--dry-run"], logs, name)
        single_s[name] = s
        separate_mem = max(separate_mem, m)
        print(f"  {name} alone {s:.1f} s", flush=True)
    one_s, one_mem = run_app("spark_apps.air_quality.run_jobs", ["--parquet", parquet.as_uri(), "--jobs", "all", "--dry-run"], logs, "all")
    print(f"  all jobs in one app {one_s:.1f} s", flush=True)
    duck_s, duck_mem, _ = run_duckdb(parquet)
    duck_e2e_s, duck_e2e_mem = run_duckdb_end_to_end(base / "raw", base / "duckdb_parquet")
    print(f"  DuckDB: ten queries {duck_s:.1f} s, CSV -> Parquet -> ten queries {duck_e2e_s:.1f} s", flush=True)
    result = {
        "layout": layout, "rows": rows, "stations": stations, "bad_rows": generated.bad_rows, "gen_s": gen_seconds,
        "raw_mb": raw_mb, "parquet_mb": parquet_mb, "parquet_files": n_files, "median_file_bytes": median_file,
        "land_s": land_s, "convert_s": conv_s, "convert_mem": conv_mem, "single_s": single_s,
        "separate_s": sum(single_s.values()) if len(single_s) == len(JOBS) else None,
        "separate_mem": separate_mem, "one_s": one_s, "one_mem": one_mem, "duck_s": duck_s, "duck_mem": duck_mem,
        "duck_e2e_s": duck_e2e_s, "duck_e2e_mem": duck_e2e_mem,
        "load_avg": os.getloadavg(), "driver_memory": local_spark_driver_memory(),
    }
    if with_dag:
        result.update(bench_dag(base / "raw", base, logs))
    return result


def markdown(results: list[dict]) -> str:
    gb = 1024 ** 3
    lines = [
        "| layout | rows | stations | raw CSV MB | Parquet files (median KB) | convert s | convert MB/s "
        "| all jobs, 1 app s | DuckDB 10 queries s | 1 app / DuckDB | land + convert + jobs s "
        "| DuckDB CSV -> Parquet -> 10 queries s | end to end / DuckDB | slowest single job s | 1 app / slowest job "
        "| peak GB convert / 1 app / DuckDB end to end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        d = ratios(r)
        lines.append(
            f"| {r['layout']} | {r['rows']:,} | {r['stations']} | {r['raw_mb']:.0f} "
            f"| {r['parquet_files']} ({r['median_file_bytes'] / 1024:,.0f}) | {r['convert_s']:.1f} | {d['convert_mb_s']:.1f} "
            f"| {r['one_s']:.1f} | {r['duck_s']:.1f} | {d['one_app_vs_duckdb']:.2f}x | {d['end_to_end_s']:.1f} "
            f"| {r['duck_e2e_s']:.1f} | {d['end_to_end_vs_duckdb']:.2f}x "
            f"| {d['slowest_single_s']:.1f} ({d['slowest_job']}) | {d['one_app_vs_slowest']:.2f}x "
            f"| {r['convert_mem'] / gb:.2f} / {r['one_mem'] / gb:.2f} / {r['duck_e2e_mem'] / gb:.2f} |"
        )
    lines += ["", "| layout | rows | " + " | ".join(JOBS) + " |", "|---|---:|" + "---:|" * len(JOBS)]
    for r in results:
        lines.append(f"| {r['layout']} | {r['rows']:,} | " + " | ".join(
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
    parser.add_argument("--layouts", default="cpcb,kaggle",
                        help="comma list of input layouts: cpcb (station exports), kaggle (Kaggle's five files)")
    parser.add_argument("--kaggle-rows", default="1000000",
                        help="comma list of station-hour row counts for the kaggle layout (its generator is slower)")
    parser.add_argument("--workdir", default="/tmp/aq_bench")
    parser.add_argument("--no-dag", action="store_true", help="skip the DAG vs direct spark-submit part")
    parser.add_argument("--single-jobs", default=",".join(JOBS),
                        help="comma list of the jobs to also run alone (default: all ten); at 10 M rows running "
                             "all ten alone takes about an hour here, so e.g. only the slowest one")
    args = parser.parse_args(argv)
    results = []
    single_jobs = [j for j in args.single_jobs.split(",") if j]
    unknown = set(single_jobs) - set(JOBS)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {list(JOBS)}")
    runs = [(layout, int(r)) for layout in args.layouts.split(",") if layout
            for r in (args.kaggle_rows if layout == "kaggle" else args.rows).split(",") if r]
    for layout, rows in runs:
        print(f"layout={layout} rows={rows:,}", flush=True)
        stations = args.stations or max(20, rows // 50_000)
        if layout == "kaggle":  # the Kaggle generator has ten distinct stations (more would repeat names)
            stations = min(stations, len(STATIONS))
        result = bench(rows, Path(args.workdir), stations, with_dag=not args.no_dag, single_jobs=single_jobs,
                       layout=layout)
        print(f"{layout} rows={rows:,}: generated in {result['gen_s']:.0f} s, {result['bad_rows']} malformed rows, "
              f"load average during the run {result['load_avg'][1]:.1f} (5 min)", flush=True)
        print(json.dumps({**result, **ratios(result)}, default=str), flush=True)
        results.append(result)
    print(f"\nmachine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GB RAM; "
          f"Spark local[*] with a {local_spark_driver_memory()} heap (SPARK_DRIVER_MEMORY, as the embedded stack sets it); "
          "analyses computed in full but not written (--dry-run), except in the DAG part\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
