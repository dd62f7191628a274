"""Spark job: analyse one day of web-server access logs.

    spark-submit --py-files dataplatform.zip spark_apps/access_logs/job.py \\
        --input s3://lake/raw/access_logs/date=2024-01-15 --log-date 2024-01-15 \\
        --summary-uri s3://lake/reports/access_logs --quarantine-uri s3://lake/quarantine/access_logs

Reads every ``*.log`` / ``*.log.gz`` file of the day folder, parses each line once into
column batches (``batches.RequestBatch``) and, in the same pass, counts them by every key the
six analyses need (``ingest.count_and_account``); one job parses, counts and summarises the day
(``ingest.summarise_day``), the six answers are read from that summary, and it writes:

* MySQL tables keyed by ``log_date`` (replace-by-day, so a rerun replaces the day):
  ``access_log_daily_summary``, ``access_log_top_clients``,
  ``access_log_url_200_counts``, ``access_log_4xx_by_status``,
  ``access_log_large_responses``, ``access_log_top_urls``;
* ``<quarantine-uri>/date=YYYY-MM-DD/`` JSON lines of unparseable lines (file, line
  number, reason, raw line), rewritten on every run (empty when all lines parse);
* ``<summary-uri>/date=YYYY-MM-DD/summary.json``, also printed to stdout.
* one row in MySQL ``data_quality_runs`` (pipeline ``access_logs``, run key = the log date,
  replaced on rerun): the input folder, total lines, quarantined lines and their count per reason.

URL columns: results tables store strings as VARCHAR(255), and real URLs are
often longer, so URL-keyed tables use ``url_sha1`` (of the full URL) as the key
and keep ``url`` cut to 255 characters with ``url_truncated`` saying so.
The summary table is written after the detail tables, so a day that has a
summary row has all its details.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from spark_apps.access_logs import analyses
from spark_apps.access_logs.ingest import count_and_account, list_log_files, parse_files, summarise_day
from spark_apps.common import data_quality, lake
from spark_apps.common.mysql import ResultsDb, replace_rows
from spark_apps.common.session import get_spark

URL_CHARS = 255
DATA_QUALITY_PIPELINE = "access_logs"  # data_quality_runs.pipeline; run_key = the log date

URL_FIELDS = [
    T.StructField("url_sha1", T.StringType()),
    T.StructField("url", T.StringType()),
    T.StructField("url_truncated", T.BooleanType()),
]


def url_columns(url: str) -> tuple[str, str, bool]:
    return (hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest(), url[:URL_CHARS], len(url) > URL_CHARS)


def _schema(*fields: T.StructField) -> T.StructType:
    return T.StructType([T.StructField("log_date", T.DateType()), *fields])


SUMMARY_SCHEMA = _schema(
    *[T.StructField(name, T.LongType()) for name in (
        "input_files", "total_lines", "parsed_lines", "quarantined_lines", "unique_client_ips",
        "status_200_requests", "status_200_distinct_urls", "client_error_responses",
        "large_responses", "large_response_min_bytes")],
    T.StructField("most_requested_url", T.StringType()),
    T.StructField("most_requested_url_requests", T.LongType()),
    T.StructField("most_404_url", T.StringType()),
    T.StructField("most_404_url_responses", T.LongType()),
)
TOP_CLIENTS_SCHEMA = _schema(
    T.StructField("rank_no", T.IntegerType()),
    T.StructField("client_ip", T.StringType()),
    T.StructField("requests", T.LongType()),
)
URL_COUNTS_SCHEMA = _schema(*URL_FIELDS, T.StructField("requests", T.LongType()))
BY_STATUS_SCHEMA = _schema(T.StructField("status", T.IntegerType()), T.StructField("responses", T.LongType()))
TOP_URLS_SCHEMA = _schema(
    T.StructField("ranking", T.StringType()),  # 'all_requests' or 'status_404'
    T.StructField("rank_no", T.IntegerType()),
    *URL_FIELDS,
    T.StructField("requests", T.LongType()),
)

TABLES = {  # table -> (schema, primary key)
    "access_log_top_clients": (TOP_CLIENTS_SCHEMA, ["log_date", "rank_no"]),
    "access_log_url_200_counts": (URL_COUNTS_SCHEMA, ["log_date", "url_sha1"]),
    "access_log_4xx_by_status": (BY_STATUS_SCHEMA, ["log_date", "status"]),
    "access_log_large_responses": (URL_COUNTS_SCHEMA, ["log_date", "url_sha1"]),
    "access_log_top_urls": (TOP_URLS_SCHEMA, ["log_date", "ranking", "rank_no"]),
    "access_log_daily_summary": (SUMMARY_SCHEMA, ["log_date"]),
}


def analyse_day(spark: SparkSession, input_uri: str, top_n: int) -> dict:
    """Parse the day once, run the six analyses; returns results (small ones as lists, big as RDDs).

    ``result["day"]`` holds the cached counts: the caller unpersists it when done writing."""
    files, ignored = list_log_files(spark, input_uri)
    if not files:
        raise FileNotFoundError(f"no *.log or *.log.gz files in {input_uri} (ignored: {ignored})")
    day = count_and_account(parse_files(spark, files))
    totals, lines = summarise_day(day, top_n)  # one job: parse, count, summarise, count lines
    return {"files": files, "ignored_files": ignored, "day": day, "lines": lines,
            **six_analyses(totals, day.counts, top_n)}


def six_analyses(totals: dict, counts, top_n: int) -> dict:
    """The six answers from the day's summarised counts (also what bench/bench_access_logs.py reports)."""
    url_200 = analyses.url_200_counts(totals, counts)
    return {
        "clients": analyses.client_stats(totals, top_n),
        "url_200": url_200.url_counts, "distinct_200": url_200.distinct_urls, "requests_200": url_200.requests,
        "errors": analyses.client_errors(totals),
        "large": analyses.large_responses(totals, counts),
        "top_urls": analyses.top_requested_urls(totals, top_n),
        "top_404": analyses.top_404_urls(totals, top_n),
    }


def summary_of(log_date: date, result: dict) -> dict:
    lines = result["lines"]
    top_urls, top_404 = result["top_urls"], result["top_404"]
    return {
        "log_date": log_date.isoformat(),
        "input_files": len(result["files"]),
        "ignored_files": result["ignored_files"],
        "total_lines": lines.total_lines,
        "parsed_lines": lines.total_lines - lines.quarantined_lines,
        "quarantined_lines": lines.quarantined_lines,
        "quarantine_reasons": dict(sorted(lines.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unique_client_ips": result["clients"].unique_ips,
        "top_clients": [[ip, n] for ip, n in result["clients"].top_clients],
        "status_200_requests": result["requests_200"],
        "status_200_distinct_urls": result["distinct_200"],
        "client_error_responses": result["errors"].total,
        "client_errors_by_status": {str(k): v for k, v in result["errors"].by_status.items()},
        "large_responses": result["large"].total,
        "large_response_min_bytes": analyses.LARGE_RESPONSE_MIN_BYTES,
        "most_requested_url": top_urls[0][0] if top_urls else None,
        "most_requested_url_requests": top_urls[0][1] if top_urls else 0,
        "most_404_url": top_404[0][0] if top_404 else None,
        "most_404_url_responses": top_404[0][1] if top_404 else 0,
        "top_urls": [[u, n] for u, n in top_urls],
        "top_404_urls": [[u, n] for u, n in top_404],
    }


def write_results(spark: SparkSession, db: ResultsDb, log_date: date, result: dict, summary: dict) -> dict:
    """Replace the day's rows in every results table; returns rows written per table."""
    d = log_date
    frames = {
        "access_log_top_clients": [
            (d, rank, ip, n) for rank, (ip, n) in enumerate(result["clients"].top_clients, start=1)],
        "access_log_url_200_counts": result["url_200"].map(lambda kv: (d, *url_columns(kv[0]), kv[1])),
        "access_log_4xx_by_status": [(d, status, n) for status, n in result["errors"].by_status.items()],
        "access_log_large_responses": result["large"].url_counts.map(lambda kv: (d, *url_columns(kv[0]), kv[1])),
        "access_log_top_urls": [
            (d, ranking, rank, *url_columns(url), n)
            for ranking, ranked in (("all_requests", result["top_urls"]), ("status_404", result["top_404"]))
            for rank, (url, n) in enumerate(ranked, start=1)],
        "access_log_daily_summary": [tuple(
            d if f.name == "log_date"
            else (summary[f.name][:URL_CHARS] if isinstance(summary[f.name], str) else summary[f.name])
            for f in SUMMARY_SCHEMA.fields)],
    }
    written = {}
    for table, rows in frames.items():  # dict order: summary last (see module doc)
        schema, keys = TABLES[table]
        df = spark.createDataFrame(rows, schema)
        written[table] = replace_rows(df, db, table, keys, "log_date = %s", [d])
    return written


def run(
    spark: SparkSession,
    db: ResultsDb,
    input_uri: str,
    log_date: date,
    summary_uri: str,
    quarantine_uri: str,
    top_n: int = 10,
) -> dict:
    result = analyse_day(spark, input_uri, top_n)
    try:
        summary = summary_of(log_date, result)
        quarantine_dir = lake.join(quarantine_uri, f"date={log_date.isoformat()}")
        lake.delete(spark, quarantine_dir)  # a rerun replaces the day's quarantine
        result["lines"].quarantine.saveAsTextFile(quarantine_dir)
        summary["quarantine_uri"] = quarantine_dir
        summary["rows_written"] = write_results(spark, db, log_date, result, summary)
        # The run's data-quality row (one per log day: a rerun replaces it), the first place to look.
        lines = result["lines"]
        data_quality.record_run(db, DATA_QUALITY_PIPELINE, log_date.isoformat(), input_uri, lines.total_lines,
                                lines.quarantined_lines, lines.reasons)
        summary_file = lake.join(summary_uri, f"date={log_date.isoformat()}", "summary.json")
        lake.write_text(spark, summary_file, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        summary["summary_uri"] = summary_file
        return summary
    finally:
        result["day"].unpersist()


def print_summary(summary: dict) -> None:
    print(f"access logs {summary['log_date']}: {summary['total_lines']} lines in {summary['input_files']} files, "
          f"{summary['parsed_lines']} parsed, {summary['quarantined_lines']} quarantined "
          f"({summary.get('quarantine_uri')})")
    print(f"  unique client IPs: {summary['unique_client_ips']}; top clients: {summary['top_clients']}")
    print(f"  status 200: {summary['status_200_requests']} requests over {summary['status_200_distinct_urls']} URLs")
    print(f"  4xx: {summary['client_error_responses']} {summary['client_errors_by_status']}")
    print(f"  responses > {summary['large_response_min_bytes']} bytes: {summary['large_responses']}")
    print(f"  most requested URL: {summary['most_requested_url']} ({summary['most_requested_url_requests']})")
    print(f"  most 404 URL: {summary['most_404_url']} ({summary['most_404_url_responses']})")
    print(json.dumps(summary, ensure_ascii=False))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--input", required=True, help="day folder URI, e.g. s3://lake/raw/access_logs/date=2024-01-15")
    parser.add_argument("--log-date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--summary-uri", required=True, help="lake URI; summary goes to <uri>/date=YYYY-MM-DD/summary.json")
    parser.add_argument("--quarantine-uri", required=True, help="lake URI; bad lines go to <uri>/date=YYYY-MM-DD/")
    parser.add_argument("--top-n", type=int, default=10)
    args = parser.parse_args(argv)
    if args.top_n < 1:
        parser.error("--top-n must be at least 1")
    spark = get_spark("access-logs")
    summary = run(spark, ResultsDb.from_env(), args.input, args.log_date, args.summary_uri,
                  args.quarantine_uri, args.top_n)
    print_summary(summary)


if __name__ == "__main__":
    main()
