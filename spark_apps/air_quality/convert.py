"""Convert landed air-quality CSV files (raw zone) into the typed Parquet datasets.

Input layouts, recognised per file by its header (reader.plan_file): CPCB station exports
(a preamble, then ``From Date,To Date,...``) and Kaggle's "Air Quality Data in India
(2015-2020)" files: ``station_hour.csv``/``city_hour.csv`` (hourly, into the hourly dataset),
``station_day.csv``/``city_day.csv`` (into the daily dataset, DAILY_SCHEMA) and
``stations.csv`` (StationId -> station name and city; no data rows of its own).

Output layout: ``<parquet_uri>/month=yyyy-MM/part-*.parquet`` with PARQUET_SCHEMA (station
is a column of the files, not a folder), one file per month, its rows sorted by station and
hour (schema.SORT_COLUMNS) in row groups of ROW_GROUP_BYTES, so that a per-station read skips
the other stations' row groups by their statistics; plus quarantine rows (source_file, line_number, line, reason) as
JSON lines under ``<quarantine_uri>/rows``, the rows left out as duplicates of a
station-hour (source_file, line_number, reason) under ``<quarantine_uri>/duplicates``
(see :func:`superseded_duplicates`), and a ``_summary.json`` with the counts.
Duplicates are not bad rows: ``max_bad_share`` is bad rows over all data rows read. The counts also go
to MySQL ``data_quality_runs`` (pipeline ``air_quality``, one row per raw zone, replaced on
rerun): total rows, bad rows and the bad rows per reason kind.

Overwrite policy: the whole dataset is overwritten on every run, not dynamically
per partition. The raw zone keeps every landed export, so the Parquet dataset is a
pure function of it and a rerun on the same input gives the same files. Dynamic
partition overwrite was rejected because CPCB exports cover arbitrary date ranges:
a second export starting mid-month would replace the whole month partition and
silently lose the hours that only the first export had (and every other station's).
A month can still be replaced alone by a writer that has all of its rows.

The layout was chosen by measurement (docs/benchmarks.md): one folder per station and
month made 13,600 files of ~60 KB at 10 M rows, and the write cost ~18 ms per file.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from spark_apps.air_quality.reader import (
    FilePlan,
    bad_rows,
    check_line_numbers,
    good_daily_rows,
    good_rows,
    is_good,
    one_file_per_partition,
    parse_raw,
    plan_files,
)
from spark_apps.air_quality.schema import PARTITION_COLUMNS, ROW_GROUP_BYTES, SORT_COLUMNS
from spark_apps.common import data_quality, lake
from spark_apps.common.mysql import ResultsDb

log = logging.getLogger(__name__)


class TooManyBadRows(RuntimeError):
    """More rows were quarantined than the run allows; the Parquet dataset was not touched."""


@dataclass(frozen=True)
class ConvertResult:
    files: int
    good_rows: int
    bad_rows: int
    blank_lines: int
    quarantine_uri: str
    duplicate_rows: int = 0  # good rows superseded by another row of the same station-hour (or -day)
    reasons: dict[str, int] = field(default_factory=dict)  # bad rows per reason kind
    daily_rows: int = 0  # of good_rows: the station-days of daily files, written to the daily dataset

    @property
    def total_rows(self) -> int:
        """Every data row read (good, superseded and bad); blank lines and preambles are not rows."""
        return self.good_rows + self.duplicate_rows + self.bad_rows

    @property
    def bad_share(self) -> float:
        """Bad rows among all data rows read (superseded copies parsed, so they count as read)."""
        return bad_share(self.bad_rows, self.total_rows)


def bad_share(bad: int, total: int) -> float:
    return bad / total if total else 0.0


# A daily file's row (midnight) and an hourly row of the same station never duplicate each other.
DUPLICATE_KEY = ["station", "from_ts", "daily"]


def superseded_duplicates(rows: DataFrame) -> DataFrame:
    """Good rows whose station-hour (or, in daily files, station-day) appears again later:
    (source_file, line_number, reason, daily).

    CPCB exports cover whatever date range the user picked, so two landed exports of a
    station may overlap. Each station-hour is kept once, from the file that sorts last
    (then its last line): a re-downloaded, later export supersedes the earlier one. The
    superseded rows are listed, not lost (the raw zone keeps their files).
    """
    good = rows.where(is_good())
    kept = (
        good.groupBy(*DUPLICATE_KEY)
        .agg(F.count(F.lit(1)).alias("copies"), F.max(F.struct("source_file", "line_number")).alias("kept"))
        .where(F.col("copies") > 1)
    )
    return (
        good.join(kept, DUPLICATE_KEY)
        .where(F.struct("source_file", "line_number") != F.col("kept"))
        .select(
            "source_file",
            "line_number",
            F.when(
                F.col("daily"),
                F.format_string(
                    "duplicate station-day %s %s: kept %s line %d",
                    F.col("station"), F.date_format("from_ts", "yyyy-MM-dd"),
                    F.col("kept.source_file"), F.col("kept.line_number"),
                ),
            ).otherwise(
                F.format_string(
                    "duplicate station-hour %s %s: kept %s line %d",
                    F.col("station"), F.date_format("from_ts", "yyyy-MM-dd HH:mm"),
                    F.col("kept.source_file"), F.col("kept.line_number"),
                )
            ).alias("reason"),
            "daily",
        )
    )


class RowCounts(NamedTuple):
    statuses: dict[str, int]  # rows per status: preamble, blank, bad, good
    reasons: dict[str, int]  # bad rows per reason kind (the reason without the offending values)
    good_daily: int  # the good rows that are daily files' rows


def count_statuses(rows: DataFrame) -> RowCounts:
    """Rows of :func:`reader.parse_raw` per status (``preamble``, ``blank``, ``bad``, ``good``)
    and bad rows per reason kind, after checking that every file's lines were numbered 1..n
    (:func:`reader.check_line_numbers`): one aggregation over the rows."""
    status = (
        F.when(F.col("preamble"), "preamble")
        .when(F.col("blank"), "blank")
        .when(F.col("reason").isNotNull(), "bad")
        .otherwise("good")
    )
    # "daily" is the file's, so grouping by it adds no groups.
    per_file = rows.groupBy("source_file", status.alias("status"), "reason_kind", "daily").agg(
        F.count(F.lit(1)).alias("count"), F.max("line_number").alias("last_line")
    ).collect()
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    good_daily = 0
    lines_per_file: dict[str, tuple[int, int]] = {}
    for r in per_file:
        counts[r["status"]] = counts.get(r["status"], 0) + r["count"]
        if r["status"] == "bad":
            reasons[r["reason_kind"]] = reasons.get(r["reason_kind"], 0) + r["count"]
        if r["status"] == "good" and r["daily"]:
            good_daily += r["count"]
        lines, last = lines_per_file.get(r["source_file"], (0, 0))
        lines_per_file[r["source_file"]] = (lines + r["count"], max(last, r["last_line"]))
    check_line_numbers(lines_per_file)
    return RowCounts(counts, reasons, good_daily)


DATA_QUALITY_PIPELINE = "air_quality"  # data_quality_runs.pipeline; run_key = the raw zone's URI


def convert(
    spark: SparkSession,
    raw_uri: str,
    parquet_uri: str,
    quarantine_uri: str,
    max_bad_share: float = 0.01,
    db: ResultsDb | None = None,
    daily_uri: str | None = None,
) -> ConvertResult:
    """Convert every export under ``raw_uri``; with ``db``, record the run in ``data_quality_runs``.

    Hourly rows go to ``parquet_uri``, the rows of daily files (Kaggle's station_day.csv,
    city_day.csv) to ``daily_uri`` (overwritten too, empty when there are none). Without
    ``daily_uri``, input holding daily rows fails the run before anything is written.

    The run key of that row is ``raw_uri`` itself: the conversion always reads the whole raw
    zone and overwrites the whole dataset, so its row describes the dataset as it is now and
    a rerun replaces it (the asset-triggered DAG run has no logical date to key it by).
    """
    # Read each export whole in its own task: the reader numbers lines per partition.
    plans = plan_files(spark, raw_uri)
    with one_file_per_partition(spark, plans):
        return _convert(spark, raw_uri, plans, parquet_uri, quarantine_uri, max_bad_share, db, daily_uri)


def _convert(
    spark: SparkSession, raw_uri: str, plans: list[FilePlan], parquet_uri: str, quarantine_uri: str,
    max_bad_share: float, db: ResultsDb | None, daily_uri: str | None,
) -> ConvertResult:
    parsed = parse_raw(spark, raw_uri, plans)
    # Counted, quarantined and written from one parse of the input. The raw text is
    # only kept for quarantined lines, and the parsed rows wait on local disk, not in
    # the heap, so that the write's sort has the memory.
    rows = parsed.rows.withColumn("line", F.when(F.col("reason").isNotNull(), F.col("line")))
    rows = rows.persist(StorageLevel.DISK_ONLY)
    try:
        counts, reasons, good_daily = count_statuses(rows)
        # Quarantine first and always, so bad rows are kept even when the run fails.
        (
            bad_rows(rows)
            # One sorted file; a shuffle of the bad rows only (orderBy would first scan
            # everything again to sample range bounds).
            .repartition(1)
            .sortWithinPartitions("source_file", "line_number")
            .write.mode("overwrite")
            .json(lake.join(quarantine_uri, "rows"))
        )
        bad, total_good = counts.get("bad", 0), counts.get("good", 0)
        failure = None
        if bad_share(bad, bad + total_good) > max_bad_share:
            failure = TooManyBadRows(
                f"{bad} of {total_good + bad} rows ({100 * bad_share(bad, bad + total_good):.2f}%) failed to parse, "
                f"above the allowed {100 * max_bad_share:.2f}%; see {quarantine_uri} - Parquet not written"
            )
        elif good_daily and daily_uri is None:
            failure = ValueError(f"{good_daily} rows of daily files under {raw_uri}, but no daily dataset URI to write "
                                 "them to; nothing written")
        if failure is None:
            superseded = _write_datasets(rows, parquet_uri, daily_uri)
        else:
            superseded = None  # counted below, from the listing
        listing = lake.join(quarantine_uri, "duplicates")
        if superseded is None or any(superseded.values()):
            duplicates = superseded_duplicates(rows).persist(StorageLevel.DISK_ONLY)
            try:
                superseded = {bool(r["daily"]): r["count"] for r in duplicates.groupBy("daily").count().collect()}
                (
                    duplicates.drop("daily").repartition(1)
                    .sortWithinPartitions("source_file", "line_number")
                    .write.mode("overwrite")
                    .json(listing)
                )
            finally:
                duplicates.unpersist()
        else:
            spark.createDataFrame([], DUPLICATES_SCHEMA).write.mode("overwrite").json(listing)
        duplicate_rows = sum(superseded.values())
        result = ConvertResult(
            files=len(plans),
            good_rows=total_good - duplicate_rows,
            bad_rows=bad,
            blank_lines=counts.get("blank", 0),
            quarantine_uri=quarantine_uri,
            duplicate_rows=duplicate_rows,
            reasons=reasons,
            daily_rows=good_daily - superseded.get(True, 0),
        )
        lake.write_text(
            spark,
            lake.join(quarantine_uri, "_summary.json"),
            json.dumps({**asdict(result), "bad_share": result.bad_share, "raw_uri": raw_uri}, indent=2),
        )
        if db is not None:
            # Failed runs too (before raising): a failed run is the one whose record matters most.
            data_quality.record_run(db, DATA_QUALITY_PIPELINE, raw_uri, raw_uri, result.total_rows, result.bad_rows,
                                    result.reasons)
        log.info(
            "converted %s: %d good rows, %d quarantined (%.4f%%) -> %s, %d blank lines skipped, "
            "%d rows superseded by a later row of the same station-hour; %d of the good rows daily",
            raw_uri, result.good_rows, result.bad_rows, 100 * result.bad_share, quarantine_uri, result.blank_lines,
            result.duplicate_rows, result.daily_rows,
        )
        if failure is not None:
            raise failure
        return result
    finally:
        rows.unpersist()


DUPLICATES_SCHEMA = "source_file STRING, line_number BIGINT, reason STRING"


def _latest_copies(good: DataFrame, key: list[str]) -> tuple[DataFrame, Observation]:
    """``good`` without the superseded copies of a ``key`` (see :func:`superseded_duplicates`: the
    copy kept is the one from the file that sorts last, then its last line), and an Observation
    of how many were left out, filled by the action that writes the result.

    A window over ``key`` rather than superseded_duplicates' aggregation and join: placed after the
    write's shuffle (``key`` includes its partition column), it costs no shuffle of its own and its
    sort is the write's, so the usual run, without duplicates, pays almost nothing for the rule
    (the aggregation and join cost 37 s of 228 at 10 M rows). Only when some were left out are they
    listed, by superseded_duplicates.
    """
    latest_first = Window.partitionBy(*key).orderBy(F.col("source_file").desc(), F.col("line_number").desc())
    copies = Observation()
    ranked = good.withColumn("copy", F.row_number().over(latest_first))
    ranked = ranked.observe(copies, F.count_if(F.col("copy") > 1).alias("superseded"))
    return ranked.where(F.col("copy") == 1).drop("copy"), copies


def _write_datasets(rows: DataFrame, parquet_uri: str, daily_uri: str | None) -> dict[bool, int]:
    """Write the hourly (and daily) dataset from the good rows, each station-hour (-day) once;
    return how many copies were left out, per ``daily``."""
    # One task per month (a shuffle of the good rows by month), its rows sorted by station
    # and hour: one file per month, whatever the number of exports and stations.
    hourly = rows.where(is_good() & ~F.col("daily")).withColumn("month", F.date_format("from_ts", "yyyy-MM"))
    hourly, hourly_copies = _latest_copies(hourly.repartition(*PARTITION_COLUMNS), [*PARTITION_COLUMNS, *SORT_COLUMNS])
    (
        good_rows(hourly)
        .sortWithinPartitions(*PARTITION_COLUMNS, *SORT_COLUMNS)
        .write.mode("overwrite")
        .option("parquet.block.size", str(ROW_GROUP_BYTES))
        .partitionBy(*PARTITION_COLUMNS)
        .parquet(parquet_uri)
    )
    superseded = {False: hourly_copies.get["superseded"], True: 0}
    if daily_uri is not None:
        # Small next to the hourly data (one row per station and day): one file, sorted.
        daily, daily_copies = _latest_copies(
            rows.where(is_good() & F.col("daily")).withColumn("day", F.to_date("from_ts")).repartition(1),
            ["station", "day"],
        )
        good_daily_rows(daily).sortWithinPartitions("station", "day").write.mode("overwrite").parquet(daily_uri)
        superseded[True] = daily_copies.get["superseded"]
    return superseded


def main(argv: list[str] | None = None) -> ConvertResult:
    parser = argparse.ArgumentParser(description="CPCB and Kaggle CSV files -> Parquet by month + quarantine")
    parser.add_argument("--raw", required=True, help="raw-zone URI holding the landed .csv exports")
    parser.add_argument("--parquet", required=True, help="output dataset URI (overwritten)")
    parser.add_argument("--daily", help="URI of the daily dataset (rows of daily files; overwritten)")
    parser.add_argument("--quarantine", required=True, help="URI for quarantined rows and the run summary")
    parser.add_argument("--max-bad-share", type=float, default=0.01, help="fail above this share of bad rows")
    parser.add_argument("--no-record", action="store_true",
                        help="write no data_quality_runs row, so no results database is needed (benchmarks)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from spark_apps.common.jit import JIT_HUGE_METHODS_CONF
    from spark_apps.common.session import get_spark

    spark = get_spark("air_quality_convert", JIT_HUGE_METHODS_CONF)
    return convert(spark, args.raw, args.parquet, args.quarantine, args.max_bad_share,
                   None if args.no_record else ResultsDb.from_env(), args.daily)


if __name__ == "__main__":
    main()
