"""Run the air-quality analyses on the Parquet dataset and store each in MySQL.

``--jobs all`` runs the eleven jobs in one application (the two that read it get the daily
dataset too, ``--daily``; the others need hourly values and log that they leave it out);
``--jobs avg_ws_df`` (or any comma list) runs just those, which is how each analysis runs as
its own Spark application.

Every job scans the Parquet itself, reading only its columns, rather than all of them sharing
a cached copy: building the in-memory cache of every column cost more (26 s at 10 M rows) than
the eleven column-pruned, vectorised scans it saved (the whole run 104 -> 79 s, and no 4.7 GB
peak). Every job is a few aggregations over about a hundred bytes per hour, so shuffles get
``TASKS_PER_CORE`` partitions per core (Spark's default of 200 made each job launch hundreds
of near-empty tasks: about 4x slower at 1 M rows on local[2]); the scan's own splits follow
the files (one per month). Both follow the cluster's ``defaultParallelism``.

Each job's table is replaced as a whole (``replace_rows`` with no scope) in one
transaction. The Parquet dataset is itself overwritten from the full raw zone on
every conversion (see convert.py), so every table is a function of the complete
dataset: replacing the whole table is idempotent and also removes stations that
left the dataset, which a per-station scope would keep forever.
"""
from __future__ import annotations

import argparse
import functools
import logging
from typing import Callable

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_apps.air_quality.jobs import JOBS, Job
from spark_apps.air_quality.schema import DAILY_SCHEMA, PARQUET_SCHEMA
from spark_apps.common import lake
from spark_apps.common.mysql import ResultsDb, replace_rows
from spark_apps.common.session import temporary_conf

log = logging.getLogger(__name__)

TASKS_PER_CORE = 2


def task_count(spark: SparkSession) -> int:
    """Partitions per shuffle: ``TASKS_PER_CORE`` per core of the application."""
    return max(1, TASKS_PER_CORE * spark.sparkContext.defaultParallelism)


def select_jobs(spec: str) -> list[Job]:
    if spec.strip() == "all":
        return list(JOBS.values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in JOBS]
    if unknown or not names:
        raise SystemExit(f"unknown job(s) {unknown}; choose from: all, {', '.join(JOBS)}")
    return [JOBS[n] for n in names]


def job_function(job: Job, top_n: int) -> Callable[..., DataFrame]:
    if job.name in ("top_polluted_days_df", "aqi_vs_source_df"):
        return functools.partial(job.func, n=top_n)
    return job.func


def read_daily(spark: SparkSession, daily_uri: str | None) -> DataFrame:
    """The daily dataset written by convert.py; empty without one (no URI, or none written yet)."""
    if daily_uri is None or not lake.exists(spark, daily_uri):
        return spark.createDataFrame([], DAILY_SCHEMA)
    return spark.read.schema(DAILY_SCHEMA).parquet(daily_uri)


def run_migrations(db: ResultsDb, job: Job) -> None:
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE %s", (job.table,))
            if cur.fetchone():  # a new table is created whole by replace_rows
                for statement in job.migrations:
                    cur.execute(statement)
    finally:
        conn.close()


def compute_and_count(df: DataFrame) -> int:
    """Compute every column of every row of ``df``, keep nothing, return the row count.

    What a dry run does instead of writing. ``df.count()`` would let the optimizer drop
    the columns nobody reads (the averages, the AQI sub-indices ...) and measure less
    work than a real run; the ``noop`` sink evaluates them all.
    """
    observed = Observation("rows")
    df.observe(observed, F.count(F.lit(1)).alias("rows")).write.format("noop").mode("overwrite").save()
    return observed.get["rows"]


def run_jobs(
    spark: SparkSession,
    parquet_uri: str,
    jobs: list[Job],
    db: ResultsDb | None,
    top_n: int = 10,
    daily_uri: str | None = None,
) -> dict[str, int]:
    """Run ``jobs`` on the hourly dataset (and, for the jobs that read it, the daily dataset at
    ``daily_uri``); write each to its table (or only count when ``db`` is None).

    Returns rows per job name.
    """
    tasks = task_count(spark)
    with temporary_conf(spark, {"spark.sql.shuffle.partitions": str(tasks)}):
        return _run_jobs(spark, parquet_uri, jobs, db, top_n, daily_uri)


def _run_jobs(
    spark: SparkSession, parquet_uri: str, jobs: list[Job], db: ResultsDb | None, top_n: int, daily_uri: str | None,
) -> dict[str, int]:
    # With the schema: a conversion of daily files only writes no hourly file to infer one from.
    hourly = spark.read.schema(PARQUET_SCHEMA).parquet(parquet_uri)
    daily = read_daily(spark, daily_uri)
    hourly_only = [job.name for job in jobs if not job.reads_daily]
    if hourly_only:
        station_days = daily.count()
        if station_days:
            log.info("%d station-days of daily files are not in the results of %s: these jobs need hourly values",
                     station_days, ", ".join(hourly_only))
    written: dict[str, int] = {}
    for job in jobs:
        run = job_function(job, top_n)
        result = run(hourly, daily) if job.reads_daily else run(hourly)
        if db is None:
            rows = compute_and_count(result)
            log.info("job %s: %d rows (dry run, not written)", job.name, rows)
        else:
            run_migrations(db, job)
            rows = replace_rows(result, db, job.table, list(job.keys))
            log.info("job %s: %d rows -> table %s", job.name, rows, job.table)
        written[job.name] = rows
    return written


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description="Air-quality analyses: Parquet -> MySQL tables")
    parser.add_argument("--parquet", required=True, help="URI of the dataset written by convert.py")
    parser.add_argument("--daily", help="URI of the daily dataset written by convert.py (absent: no daily input)")
    parser.add_argument("--jobs", default="all", help=f"'all' or a comma list of: {', '.join(JOBS)}")
    parser.add_argument("--top-n", type=int, default=10,
                        help="days per station for top_polluted_days_df and aqi_vs_source_df")
    parser.add_argument(
        "--dry-run", action="store_true", help="compute and count the results without writing them"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    jobs = select_jobs(args.jobs)
    db = None if args.dry_run else ResultsDb.from_env()
    from spark_apps.common.jit import JIT_HUGE_METHODS_CONF
    from spark_apps.common.session import get_spark

    spark = get_spark("air_quality_jobs_" + ("all" if len(jobs) == len(JOBS) else "_".join(j.name for j in jobs)),
                      JIT_HUGE_METHODS_CONF)
    return run_jobs(spark, args.parquet, jobs, db, args.top_n, args.daily)


if __name__ == "__main__":
    main()
