"""Weather streaming job: OpenWeatherMap responses on Kafka -> Cassandra and MySQL.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/weather/job.py \\
        --bootstrap broker:9092 --checkpoint s3://lake/streaming/_checkpoints/weather \\
        --cassandra-contact-points 127.0.0.1 --cassandra-port 9042 --status-uri s3://lake/streaming/_status/weather

Two queries over ``--source-topic`` (``weather-raw``; Spark's Kafka source, one checkpoint each
under ``--checkpoint``), both checking every record with :func:`transforms.checked` (Spark SQL:
``try_parse_json`` + ``from_json`` and checks over the JVM's own values, no Python per record):

* ``weather_observations`` (stateless): each micro-batch's valid observations, one per (city,
  ``dt``) (:func:`transforms.deduplicate_batch`), are upserted into Cassandra
  ``<keyspace>.observations``; then the batch's invalid records are published to
  ``--dead-letter-topic`` by Spark's Kafka sink (:func:`kafka_io.write_kafka_batch`, inside the
  foreachBatch as metrics job B does: a query has one sink). A batch that failed on Cassandra
  has sent no dead letters yet; one replayed after a crash sends them again (at-least-once,
  keyed by their source coordinates, so duplicates are obvious).
* ``weather_hourly`` (stateful): observations deduplicated on (city, ``dt``) and aggregated per
  city and event-time hour with a watermark (:func:`transforms.hourly_aggregates`), output mode
  *update*: each micro-batch upserts the hours it changed, with their totals so far, into
  Cassandra ``<keyspace>.hourly`` and MySQL ``weather_hourly`` (keyed by city and hour).

Exactly once in effect: every write is an upsert of whole rows keyed by what they describe
(observation: city, day, time; hour: city, month, hour), never an increment. A micro-batch
replayed after a failure (Spark replays the same offsets with the same state) writes the same
rows again, which changes nothing; so does a duplicate response (the API returns the same
observation until the station reports again), which also lands on its own key. Why a second
query rather than aggregates computed in the first one's foreachBatch: a foreachBatch sees a
static frame, without Spark's event-time state; the two queries read the (small) topic twice.

Writes to Cassandra: from the foreachBatch, per partition on the executors
(:func:`spark_apps.common.cassandra.write_frame`) with the Python driver: prepared statements
marked idempotent, ``execute_concurrent_with_args``, retries; each executor's Python worker
keeps its session between micro-batches. Why not collect to the driver: a weather batch is
small, but a batch after an outage is ``--max-offsets-per-trigger`` records, the same job
serves higher rates (benchmarks) and the executors hold the rows already; per partition keeps
the driver out of the data path and the concurrency growing with the partitions. (The Spark
Cassandra Connector, the usual way, has no release for Spark 4: see the module above.)

Cassandra unreachable: the write fails after its retries, the foreachBatch raises, the query
fails and the job exits non-zero; the supervisor (Airflow task retries) resubmits it, and it
resumes from its checkpoints - the failed batch is replayed, nothing is lost or doubled.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common import cassandra
from spark_apps.common.lake import join
from spark_apps.common.mysql import ResultsDb, upsert_rows
from spark_apps.common.session import get_spark
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_batch
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)
from spark_apps.streaming.weather import tables, transforms

APP_NAME = "weather_streaming"
OBSERVATIONS_QUERY = "weather_observations"
HOURLY_QUERY = "weather_hourly"
SOURCE_TOPIC = "weather-raw"
DEAD_LETTER_TOPIC = "weather-dead-letter"
DEFAULT_TRIGGER_SECONDS = 10.0
# Records per micro-batch when the caller does not say: a few minutes of a busy topic.
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 100_000


def write_observations(batch: DataFrame, config: cassandra.CassandraConfig, keyspace: str,
                       publish_dead_letters=None) -> tuple[int, int]:
    """foreachBatch of ``weather_observations`` over a batch of :func:`transforms.checked`: the
    valid observations (one per city and ``dt``) upserted into Cassandra, then the invalid
    records handed as a (key, value) frame to ``publish_dead_letters`` (None: not published),
    which must raise unless all were delivered. Returns (observations written, dead letters)."""
    batch = batch.persist()
    try:
        counts = {row["valid"]: row["count"] for row in
                  batch.groupBy(F.col("reason").isNull().alias("valid")).count().collect()}
        written = 0
        if counts.get(True):
            rows = transforms.cassandra_observation_values(transforms.deduplicate_batch(transforms.observations(batch)))
            written = cassandra.write_frame(rows, config, tables.observations_insert(keyspace))
        dead = counts.get(False, 0)
        if dead and publish_dead_letters is not None:
            publish_dead_letters(transforms.dead_letters(batch))
        return written, dead
    finally:
        batch.unpersist()


def write_hourly(batch: DataFrame, config: cassandra.CassandraConfig, keyspace: str, db: ResultsDb | None) -> int:
    """foreachBatch of ``weather_hourly`` over a batch of :func:`transforms.hourly_aggregates`
    (the hours the micro-batch changed, with their totals): upserted into Cassandra, then into
    MySQL ``weather_hourly`` (``db`` None: not). Returns the number of hours written."""
    batch = batch.persist()
    try:
        written = cassandra.write_frame(transforms.cassandra_hourly_values(batch), config, tables.hourly_insert(keyspace))
        if db is not None and written:
            upsert_rows(transforms.mysql_hourly_values(batch), db, tables.MYSQL_HOURLY_TABLE,
                        list(tables.MYSQL_HOURLY_KEYS))
        return written
    finally:
        batch.unpersist()


def _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger) -> DataFrame:
    return read_kafka_stream(spark, bootstrap, source_topic, kafka_options, startingOffsets=starting_offsets,
                             maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER)


def start_queries(
    spark: SparkSession,
    bootstrap: str,
    checkpoint: str,
    config: cassandra.CassandraConfig,
    db: ResultsDb | None,
    keyspace: str = tables.KEYSPACE,
    source_topic: str = SOURCE_TOPIC,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    watermark: str = transforms.DEFAULT_WATERMARK,
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> list[StreamingQuery]:
    """Start both queries (checkpoints ``<checkpoint>/observations`` and ``<checkpoint>/hourly``;
    ``startingOffsets`` only applies to a new checkpoint)."""
    trigger = trigger_options(available_now, trigger_seconds)

    def publish_dead_letters(letters: DataFrame) -> None:
        write_kafka_batch(letters, bootstrap, dead_letter_topic, kafka_options)

    def observations_batch(batch: DataFrame, _batch_id: int) -> None:
        write_observations(batch, config, keyspace, publish_dead_letters)

    def hourly_batch(batch: DataFrame, _batch_id: int) -> None:
        write_hourly(batch, config, keyspace, db)

    source = _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger)
    observations = (
        transforms.checked(source).writeStream.queryName(OBSERVATIONS_QUERY)
        .outputMode("append").foreachBatch(observations_batch)
        .option("checkpointLocation", join(checkpoint, "observations")).trigger(**trigger).start()
    )
    source = _source(spark, bootstrap, source_topic, kafka_options, starting_offsets, max_offsets_per_trigger)
    hourly = (
        transforms.hourly_aggregates(transforms.observations(transforms.checked(source)), watermark)
        .writeStream.queryName(HOURLY_QUERY)
        .outputMode("update").foreachBatch(hourly_batch)
        .option("checkpointLocation", join(checkpoint, "hourly")).trigger(**trigger).start()
    )
    return [observations, hourly]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="OpenWeatherMap responses -> Cassandra observations and hourly "
                                                 "aggregates (Cassandra + MySQL)")
    add_streaming_arguments(parser, trigger_seconds=DEFAULT_TRIGGER_SECONDS)
    parser.add_argument("--source-topic", default=SOURCE_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--keyspace", default=tables.KEYSPACE)
    parser.add_argument("--watermark", default=transforms.DEFAULT_WATERMARK,
                        help="how late (event time) an observation may arrive and still count in its hour")
    cassandra.add_location_arguments(parser)
    parser.add_argument("--no-mysql", action="store_true", help="hourly aggregates to Cassandra only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    # Credentials (if any) come from the environment or Secrets Manager, never from arguments.
    config = cassandra.config_from_arguments(args)
    queries = start_queries(
        spark, args.bootstrap, args.checkpoint, config, None if args.no_mysql else ResultsDb.from_env(),
        args.keyspace, args.source_topic, args.dead_letter_topic, args.watermark, args.trigger_seconds,
        args.available_now, args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, queries, args.status_uri)
    else:
        for query in queries:
            query.awaitTermination()  # raises StreamingQueryException if the query failed


if __name__ == "__main__":
    main()
