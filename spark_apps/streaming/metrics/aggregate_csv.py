"""Batch job: totals per server from the metric CSV files job B wrote to the lake.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/metrics/aggregate_csv.py --lake s3://lake

Reads ``<lake>/streaming/metrics_csv/`` (the committed ``batch_id=<id>/metric_name=...``
folders) and replaces the whole MySQL table ``server_metric_totals`` (server_name,
total_sum, count, average), so a rerun gives the same table. Only batch folders holding
``_SUCCESS`` are read, so files of an unfinished micro-batch are never counted.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.common.mysql import ResultsDb, replace_rows
from spark_apps.common.session import get_spark
from spark_apps.streaming.metrics.protobuf_to_lake_and_mysql import committed_csv_folders, csv_uri
from spark_apps.streaming.metrics.transforms import server_totals

TOTALS_TABLE = "server_metric_totals"
# The CSV columns as job B writes them; metric_name comes from the folder names.
CSV_SCHEMA = T.StructType([
    T.StructField("host", T.StringType()),
    T.StructField("region", T.StringType()),
    T.StructField("event_time_ms", T.LongType()),
    T.StructField("event_time", T.TimestampType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("source_topic", T.StringType()),
    T.StructField("source_partition", T.IntegerType()),
    T.StructField("source_offset", T.LongType()),
])


def read_metric_csv(spark: SparkSession, lake_uri: str) -> DataFrame:
    """Rows of the committed batch folders: CSV_SCHEMA columns plus metric_name."""
    root = csv_uri(lake_uri)
    folders = committed_csv_folders(spark, root)
    if not folders:
        return spark.createDataFrame([], T.StructType([*CSV_SCHEMA.fields, T.StructField("metric_name", T.StringType())]))
    # FAILFAST: the files are ours; a row that does not fit the schema is a bug to see.
    # basePath: metric_name (and batch_id) come from the folder names below the root.
    rows = (
        spark.read.schema(CSV_SCHEMA).option("header", "true").option("mode", "FAILFAST")
        .option("basePath", root).csv(folders)
    )
    return rows.select(*CSV_SCHEMA.fieldNames(), F.col("metric_name").cast("string"))


def run(spark: SparkSession, lake_uri: str, db: ResultsDb) -> int:
    """Replace ``server_metric_totals``; returns the number of servers written."""
    return replace_rows(server_totals(read_metric_csv(spark, lake_uri)), db, TOTALS_TABLE, ["server_name"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Per-server totals of the lake's metric CSV files -> MySQL")
    parser.add_argument("--lake", required=True, help="lake root URI")
    args = parser.parse_args(argv)
    written = run(get_spark("metrics_aggregate_csv"), args.lake, ResultsDb.from_env())
    print(f"{TOTALS_TABLE}: {written} servers")


if __name__ == "__main__":
    main()
