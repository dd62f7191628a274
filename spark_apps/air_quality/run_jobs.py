"""Run the air-quality analyses on the Parquet dataset and store each in MySQL.

``--jobs all`` reads the Parquet once, caches it and runs the ten jobs on the cached
frame; ``--jobs avg_ws_df`` (or any comma list) runs just those, which is how each
analysis runs as its own Spark application.

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

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from spark_apps.air_quality.jobs import JOBS, Job
from spark_apps.common.mysql import ResultsDb, replace_rows

log = logging.getLogger(__name__)


def select_jobs(spec: str) -> list[Job]:
    if spec.strip() == "all":
        return list(JOBS.values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in JOBS]
    if unknown or not names:
        raise SystemExit(f"unknown job(s) {unknown}; choose from: all, {', '.join(JOBS)}")
    return [JOBS[n] for n in names]


def job_function(job: Job, top_n: int) -> Callable[[DataFrame], DataFrame]:
    if job.name == "top_polluted_days_df":
        return functools.partial(job.func, n=top_n)
    return job.func


def run_jobs(
    spark: SparkSession,
    parquet_uri: str,
    jobs: list[Job],
    db: ResultsDb | None,
    top_n: int = 10,
) -> dict[str, int]:
    """Run ``jobs`` on the dataset; write each to its table (or only count when ``db`` is None).

    Returns rows per job name.
    """
    hourly = spark.read.parquet(parquet_uri)
    # Several jobs scan the same rows; read and decode the Parquet once.
    cached = len(jobs) > 1
    if cached:
        hourly = hourly.persist(StorageLevel.MEMORY_AND_DISK)
    written: dict[str, int] = {}
    try:
        for job in jobs:
            result = job_function(job, top_n)(hourly)
            if db is None:
                rows = result.count()
                log.info("job %s: %d rows (dry run, not written)", job.name, rows)
            else:
                rows = replace_rows(result, db, job.table, list(job.keys))
                log.info("job %s: %d rows -> table %s", job.name, rows, job.table)
            written[job.name] = rows
    finally:
        if cached:
            hourly.unpersist()
    return written


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description="Air-quality analyses: Parquet -> MySQL tables")
    parser.add_argument("--parquet", required=True, help="URI of the dataset written by convert.py")
    parser.add_argument("--jobs", default="all", help=f"'all' or a comma list of: {', '.join(JOBS)}")
    parser.add_argument("--top-n", type=int, default=10, help="days per station for top_polluted_days_df")
    parser.add_argument(
        "--dry-run", action="store_true", help="compute and count the results without writing them"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    jobs = select_jobs(args.jobs)
    db = None if args.dry_run else ResultsDb.from_env()
    from spark_apps.common.session import get_spark

    spark = get_spark("air_quality_jobs_" + ("all" if len(jobs) == len(JOBS) else "_".join(j.name for j in jobs)))
    return run_jobs(spark, args.parquet, jobs, db, args.top_n)


if __name__ == "__main__":
    main()
