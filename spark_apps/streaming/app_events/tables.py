"""Where the app-events job writes: MySQL tables (the job creates them: :data:`DDL`) and the lake
layout. No Spark import here beyond the schemas' types (the tests and the bench read these names).

* MySQL ``app_event_category_stats``: one row per (category, window start), the window's totals
  so far; written by upsert, so a window updated by a later micro-batch, or replayed, replaces its
  row.
* MySQL ``app_event_dead_letter_counts``: dead letters per (stream, batch, kind of reason) - the
  stream id is the dead-letter query's checkpoint id, so a replay of the same batch rewrites the
  same row and a replay of the topic through a new checkpoint is counted apart.
* Lake ``<lake>/app_events/clean/``: the valid events as Parquet partitioned by ``event_date``
  (UTC), written by Spark's file sink: exactly once through its ``_spark_metadata`` log (read the
  folder with Spark, which honours that log, so files of a batch that failed midway are never seen).
"""
from __future__ import annotations

from pyspark.sql import types as T

STATS_TABLE = "app_event_category_stats"
STATS_KEYS = ("category", "window_start")
STATS_SCHEMA = T.StructType([
    T.StructField("category", T.StringType()), T.StructField("window_start", T.TimestampNTZType()),
    T.StructField("window_end", T.TimestampNTZType()), T.StructField("views", T.LongType()),
    T.StructField("likes", T.LongType()), T.StructField("avg_watch_time_s", T.DoubleType()),
    T.StructField("total_watch_time_s", T.DoubleType()), T.StructField("distinct_users", T.LongType()),
])
DEAD_LETTER_COUNTS_TABLE = "app_event_dead_letter_counts"
DEAD_LETTER_COUNTS_KEYS = ("stream_id", "batch_id", "reason_kind")
DEAD_LETTER_COUNTS_SCHEMA = T.StructType([
    T.StructField("stream_id", T.StringType()), T.StructField("batch_id", T.LongType()),
    T.StructField("reason_kind", T.StringType()), T.StructField("dead_letters", T.LongType()),
])
# Written here rather than derived from the schemas (spark_apps/common/mysql.create_table_sql):
# narrow key columns, and the job creates its tables itself before its first batch.
DDL = (
    f"CREATE TABLE IF NOT EXISTS `{STATS_TABLE}` (category VARCHAR(64) NOT NULL, window_start DATETIME NOT NULL, "
    "window_end DATETIME NOT NULL, views BIGINT NOT NULL, likes BIGINT NOT NULL, avg_watch_time_s DOUBLE, "
    "total_watch_time_s DOUBLE, distinct_users BIGINT NOT NULL, PRIMARY KEY (category, window_start))",
    f"CREATE TABLE IF NOT EXISTS `{DEAD_LETTER_COUNTS_TABLE}` (stream_id VARCHAR(36) NOT NULL, "
    "batch_id BIGINT NOT NULL, reason_kind VARCHAR(64) NOT NULL, dead_letters BIGINT NOT NULL, "
    "PRIMARY KEY (stream_id, batch_id, reason_kind))",
)

CLEAN_DIR = "app_events/clean"
PARTITION_COLUMN = "event_date"
