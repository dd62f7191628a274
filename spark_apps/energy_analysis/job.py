"""The energy analysis of one run date: from the joined readings (``lake.energy_joined``, by name)
to three charts in the lake, a fitted model in the lake and one metrics row in MySQL.

1. Registers the lake's tables (common/catalog.py; in the persistent catalog when the session
   has one) and reads ``lake.energy_joined``, optionally only the event dates ``--from-date`` ..
   ``--to-date`` (a partition filter).
2. Fits the regression (regression.py) on a 70/30 split with a fixed seed; saves the
   PipelineModel to ``--model-uri`` (overwritten by a rerun).
3. Draws the scatter (with the fitted slope), the weekly and the daily profile (charts.py) and
   writes them to ``--charts-uri`` through Hadoop's FileSystem (s3a://, s3://, file://). A rerun
   replaces the folder's charts.
4. Upserts the run's row into ``--metrics-table`` (key ``run_date``: a rerun replaces it), last,
   so a row says the charts and the model of its date are complete.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_apps.common import catalog, lake
from spark_apps.common.mysql import ResultsDb, upsert_values
from spark_apps.energy_analysis import charts, profiles, regression

log = logging.getLogger(__name__)

JOINED_TABLE = "energy_joined"
MAX_SCATTER_POINTS = 5000


@dataclass(frozen=True)
class RunResult:
    rows: int
    fit: regression.Fit
    charts: dict[str, str]  # name -> URI
    model_uri: str
    metrics: tuple  # the metrics row, METRICS_SCHEMA order


def read_joined(spark: SparkSession, from_date: date | None = None, to_date: date | None = None) -> DataFrame:
    """``lake.energy_joined`` (registered by catalog.register_tables) within the date range."""
    name = f"{catalog.DATABASE}.{JOINED_TABLE}"
    if not spark.catalog.tableExists(f"{catalog.DATABASE}.{JOINED_TABLE}"):
        raise SystemExit(f"no table {name}: the streaming join has written nothing to the lake yet")
    return profiles.in_range(spark.table(name), from_date, to_date)


def draw_charts(prepared: DataFrame, rows: int, fit: regression.Fit, run_label: str, seed: int,
                max_points: int = MAX_SCATTER_POINTS) -> dict[str, bytes]:
    """The three charts as PNG bytes, by file name."""
    points = profiles.scatter_sample(prepared, rows, max_points, seed)
    return {
        charts.SCATTER: charts.scatter_png(points, rows, fit.temperature_coef, profiles.means(prepared), run_label),
        charts.WEEKLY: charts.weekly_png(profiles.weekly_profile(prepared), run_label),
        charts.DAILY: charts.daily_png(profiles.daily_profile(prepared), run_label),
    }


def write_charts(spark: SparkSession, charts_uri: str, pngs: dict[str, bytes]) -> dict[str, str]:
    """Replace the run folder's charts with ``pngs``: drawn first, so a failed drawing leaves the
    previous charts; the folder is cleared so a chart this version no longer draws goes too."""
    lake.delete(spark, charts_uri)
    written = {}
    for name, data in pngs.items():
        uri = lake.join(charts_uri, name)
        lake.write_bytes(spark, uri, data)
        written[name] = uri
    return written


def analyse(spark: SparkSession, joined: DataFrame, run_date: date, charts_uri: str, model_uri: str,
            db: ResultsDb | None, metrics_table: str, seed: int = regression.DEFAULT_SEED,
            max_points: int = MAX_SCATTER_POINTS) -> RunResult:
    """Everything after reading: fit, model, charts, metrics row (not written when ``db`` is None)."""
    prepared = profiles.prepare(joined).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        span = prepared.agg(F.count(F.lit(1)), F.min("event_date"), F.max("event_date")).first()
        rows, data_from, data_to = int(span[0]), span[1], span[2]
        if rows < regression.MIN_ROWS:
            raise SystemExit(f"{rows} analysable readings (at least {regression.MIN_ROWS} needed) for run {run_date}")
        log.info("%d readings of %s .. %s", rows, data_from, data_to)
        fit = regression.fit_and_evaluate(prepared, seed)
        log.info("fit: temperature %+.5f kWh/h per degC, RMSE %.4f, MAE %.4f, R2 %.4f (train %d, test %d)",
                 fit.temperature_coef, fit.rmse, fit.mae, fit.r2, fit.train_rows, fit.test_rows)
        fit.model.write().overwrite().save(model_uri)
        written = write_charts(spark, charts_uri, draw_charts(prepared, rows, fit, run_date.isoformat(), seed, max_points))
    finally:
        prepared.unpersist()
    # MySQL DATETIME has no zone: the time in UTC, as every table of the platform.
    finished_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    row = regression.metrics_row(run_date, fit, model_uri, finished_at, data_from, data_to)
    if db is not None:
        upsert_values(db, metrics_table, regression.METRICS_SCHEMA, regression.METRICS_KEYS, [row])
        log.info("metrics of %s -> %s", run_date, metrics_table)
    return RunResult(rows, fit, written, model_uri, row)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def main(argv: list[str] | None = None) -> RunResult:
    parser = argparse.ArgumentParser(description="Energy x weather analysis: charts, regression, metrics")
    parser.add_argument("--lake", required=True, help="the lake's URI (tables are registered over its datasets)")
    parser.add_argument("--run-date", required=True, help="the run's date (YYYY-MM-DD): the metrics row's key")
    parser.add_argument("--from-date", help="first event date analysed (default: the first there is)")
    parser.add_argument("--to-date", help="last event date analysed (default: the last there is)")
    parser.add_argument("--charts-uri", required=True, help="folder of the run's charts (reports/<run date>/)")
    parser.add_argument("--model-uri", required=True, help="folder of the run's PipelineModel (overwritten)")
    parser.add_argument("--metrics-table", required=True, help="MySQL table of the regression metrics")
    parser.add_argument("--catalog", choices=catalog.CATALOGS, default="session",
                        help="where the lake's tables are registered (see spark_apps/common/catalog.py)")
    parser.add_argument("--metastore-dir", help="the derby catalog's folder (local to the driver)")
    parser.add_argument("--seed", type=int, default=regression.DEFAULT_SEED, help="seed of the 70/30 split and the sample")
    parser.add_argument("--dry-run", action="store_true", help="everything but the metrics row")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_date = date.fromisoformat(args.run_date)
    db = None if args.dry_run else ResultsDb.from_env()
    from spark_apps.common.session import get_spark

    spark = get_spark("energy_analysis", catalog.session_conf(args.catalog, args.metastore_dir))
    catalog.prepare_session(spark, args.catalog, args.metastore_dir)
    catalog.register_tables(spark, args.lake)
    joined = read_joined(spark, _date(args.from_date), _date(args.to_date))
    result = analyse(spark, joined, run_date, args.charts_uri, args.model_uri, db, args.metrics_table, args.seed)
    for name, uri in result.charts.items():
        log.info("chart %s -> %s", name, uri)
    return result


if __name__ == "__main__":
    main()
