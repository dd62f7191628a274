"""Air-quality raw rows into Cassandra / Amazon Keyspaces: the typed rows of every landed CPCB
export, upserted into ``<keyspace>.hourly_readings`` (spark_apps/air_quality/tables.py).

    spark-submit --py-files spark_apps.zip spark_apps/air_quality/to_cassandra.py \\
        --raw s3://lake/raw/air_quality --cassandra-contact-points 127.0.0.1 --cassandra-port 9042

A task of its own in the ``air_quality_convert`` DAG, beside convert.py and independent of it: it
reads the same landed raw CSV through the same typed reader (:func:`reader.parse_raw`, one file
per partition) and writes the rows convert.py writes to Parquet, no others:

* quarantined lines (a reason), blank lines and preambles are not written (the quarantine itself
  is convert.py's to write);
* a station-hour that several landed exports hold is written once, from the copy convert.py keeps
  (:func:`convert.superseded_duplicates`: the file sorting last, then its last line);
* above ``--max-bad-share`` quarantined rows nothing is written (:class:`convert.TooManyBadRows`),
  as convert.py then writes no Parquet.

Idempotent: every write is an upsert of a whole row keyed by (station, month, from_ts)
(spark_apps/common/cassandra.py: prepared statements marked idempotent, executed concurrently
per Spark partition by the executor holding it, transient failures re-sent), so a rerun, or a
retried task, leaves the same rows. Nulls are bound as *unset* (no tombstone per missing value;
an export lacks most of the 20 measures), except for the station-hours several exports hold:
their kept copy is written with its nulls, so no value of a superseded copy that an earlier run
wrote survives. Rows are never deleted: the raw zone keeps every landed export, so the rows of
a run are a superset of the previous run's.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_apps.air_quality import tables
from spark_apps.air_quality.convert import TooManyBadRows, bad_share, count_statuses, superseded_duplicates
from spark_apps.air_quality.reader import good_rows, one_file_per_partition, parse_raw, plan_files
from spark_apps.air_quality.schema import MEASURE_COLUMNS
from spark_apps.common import cassandra

log = logging.getLogger(__name__)

APP_NAME = "air_quality_to_cassandra"
ROW_KEY = ["source_file", "line_number"]
STATION_HOUR = ["station", "from_ts"]


@dataclass(frozen=True)
class ReadingsWritten:
    files: int
    written: int  # rows upserted
    replacing: int  # of them: kept copies of station-hours several exports hold (written with their nulls)
    bad_rows: int  # quarantined lines, not written
    duplicate_rows: int  # superseded copies of a station-hour, not written
    # good rows of daily files (Kaggle's station_day/city_day): not hourly readings, so not written
    # (they are the conversion's daily dataset)
    daily_rows: int = 0


def _instant_ms(wall_clock: str) -> Column:
    """Epoch milliseconds of a CPCB wall-clock time (``TIMESTAMP_NTZ``) in India's zone; built
    from its fields with an explicit zone, so the session time zone plays no part."""
    ts = F.col(wall_clock)
    instant = F.make_timestamp(F.year(ts), F.month(ts), F.dayofmonth(ts), F.hour(ts), F.minute(ts), F.second(ts),
                               F.lit(tables.CPCB_TIME_ZONE))
    return F.unix_millis(instant)


def reading_values(good: DataFrame) -> DataFrame:
    """Rows in the Parquet schema (:func:`reader.good_rows`) as the values of
    ``tables.READING_COLUMNS`` (the INSERT's markers): ``from_ts``/``to_ts`` as epoch
    milliseconds (the driver binds them to ``timestamp``), the rest as they are."""
    return good.select("station", "month", _instant_ms("from_ts").alias("from_ts"),
                       _instant_ms("to_ts").alias("to_ts"), "city", *MEASURE_COLUMNS, "source_file")


def readings_to_write(rows: DataFrame, duplicates: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(single, replacing)`` values to upsert from rows of :func:`reader.parse_raw` and their
    :func:`convert.superseded_duplicates`: the good rows without the superseded copies, split into
    station-hours the input holds once (``single``) and the kept copies of those it holds several
    times (``replacing``, written with their nulls). Pass ``rows`` and ``duplicates`` persisted:
    each appears several times in the plans, and uncached each would bring the parser's large plan."""
    copies = duplicates.select(*ROW_KEY)
    # Daily files' rows are not hourly readings (good_rows leaves them out): nor do they replace one.
    replaced = rows.where(~F.col("daily")).join(copies, ROW_KEY, "left_semi").select(*STATION_HOUR).distinct()
    kept = good_rows(rows.join(copies, ROW_KEY, "left_anti"))
    return (reading_values(kept.join(replaced, STATION_HOUR, "left_anti")),
            reading_values(kept.join(replaced, STATION_HOUR, "left_semi")))


def write_readings(spark: SparkSession, raw_uri: str, config: cassandra.CassandraConfig,
                   keyspace: str = tables.KEYSPACE, max_bad_share: float = 0.01) -> ReadingsWritten:
    """Upsert the good rows of every export under ``raw_uri`` into ``<keyspace>.hourly_readings``."""
    plans = plan_files(spark, raw_uri)
    # Inside for every action, as convert.py: line numbers (the duplicates' tie-break) are
    # partition row indexes only while each file is read whole into a partition of its own.
    with one_file_per_partition(spark, plans):
        rows = parse_raw(spark, raw_uri, plans).rows.drop("line").persist(StorageLevel.DISK_ONLY)
        duplicates = superseded_duplicates(rows).persist(StorageLevel.DISK_ONLY)
        try:
            row_counts = count_statuses(rows)
            counts = row_counts.statuses
            duplicate_rows = duplicates.count()
            # Over all data rows read, superseded copies included, as convert.py counts it.
            read, bad = counts.get("good", 0) + counts.get("bad", 0), counts.get("bad", 0)
            if bad_share(bad, read) > max_bad_share:
                raise TooManyBadRows(
                    f"{bad} of {read} rows ({100 * bad_share(bad, read):.2f}%) failed to parse, above the "
                    f"allowed {100 * max_bad_share:.2f}%; see the conversion's quarantine - nothing written to "
                    f"Cassandra"
                )
            single, replacing = readings_to_write(rows, duplicates)
            insert = tables.readings_insert(keyspace)
            written_single = cassandra.write_frame(single, config, insert)
            written_replacing = cassandra.write_frame(replacing, config, insert, unset_nulls=False)
        finally:
            rows.unpersist()
            duplicates.unpersist()
    result = ReadingsWritten(files=len(plans), written=written_single + written_replacing,
                             replacing=written_replacing, bad_rows=bad, duplicate_rows=duplicate_rows,
                             daily_rows=row_counts.good_daily)
    log.info("upserted %d rows of %s into %s.%s on %s (%d replacing another export's copy; %d quarantined, "
             "%d superseded and %d daily-file rows not written)", result.written, raw_uri, keyspace,
             tables.READINGS_TABLE, config, result.replacing, result.bad_rows, result.duplicate_rows, result.daily_rows)
    return result


def main(argv: list[str] | None = None) -> ReadingsWritten:
    parser = argparse.ArgumentParser(description="CPCB hourly CSV exports -> Cassandra air_quality.hourly_readings")
    parser.add_argument("--raw", required=True, help="raw-zone URI holding the landed .csv exports")
    parser.add_argument("--keyspace", default=tables.KEYSPACE)
    parser.add_argument("--max-bad-share", type=float, default=0.01,
                        help="write nothing above this share of bad rows (as the conversion does)")
    cassandra.add_location_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from spark_apps.common.jit import JIT_HUGE_METHODS_CONF
    from spark_apps.common.session import get_spark

    spark = get_spark(APP_NAME, JIT_HUGE_METHODS_CONF)
    # Credentials (if any) come from the environment or Secrets Manager, never from arguments.
    return write_readings(spark, args.raw, cassandra.config_from_arguments(args), args.keyspace, args.max_bad_share)


if __name__ == "__main__":
    main()
