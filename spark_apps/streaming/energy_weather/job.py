"""Energy x weather streaming job: meter readings joined with the weather of their region, in the lake.

    spark-submit --py-files spark_apps.zip spark_apps/streaming/energy_weather/job.py \\
        --bootstrap broker:9092 --lake s3://lake --checkpoint s3://lake/streaming/_checkpoints/energy_weather \\
        --status-uri s3://lake/streaming/_status/energy_weather

Three queries (Spark's Kafka source; one checkpoint each under ``--checkpoint``):

* ``energy_joined`` and ``energy_unmatched``: ``--readings-topic`` (``energy-readings``) checked by
  :func:`transforms.checked_readings`, ``--weather-topic`` (``weather-raw``) by the weather job's
  checks, mapped to regions (``--region-cities``), and :func:`transforms.nearest_weather`: a
  stream-stream left outer join on region and ``weather_time BETWEEN reading_time - --before AND
  reading_time + --after`` with a watermark on each side, then the nearest observation per reading.
  ``energy_joined`` writes the readings that had weather to ``<lake>/energy/joined/``,
  ``energy_unmatched`` the others, with the reason ``no weather within range``, to
  ``<lake>/energy/unmatched/`` (layout.py). Both are Spark's file sink (Parquet, partitioned by
  ``event_date``, append mode): exactly once through the checkpoint - a replayed micro-batch
  rewrites nothing the sink's log already committed, and readers of the dataset folder see only
  committed files (the sink's ``_spark_metadata`` log). Why two queries for one join: a query has
  one sink, and only the file sink itself gives exactly once (a foreachBatch writing two datasets
  would be at-least-once); the price is that each query reads both topics and keeps its own join
  state - the same inputs, the same operators, so the two split the readings exactly.
* ``energy_dead_letters`` (stateless): the readings that failed a check, with reason and source
  offset, to ``--dead-letter-topic`` (Spark's Kafka sink: at-least-once, keyed by the source
  coordinates, so a duplicate after a crash is obvious).

Counts: every query ``observe``s its rows (joined, unmatched, dead letters per micro-batch); the
counts travel in the query progress (``observed_metrics`` of the status files, with the state
operators' rows and ``numRowsDroppedByWatermark``: readings later than the watermark).

Supervision as the other jobs: progress, heartbeat and graceful stop through ``--status-uri``
(:func:`supervision.run_until_stopped`); a failing query ends the job with an error, Airflow's
retry resubmits it and it resumes from its checkpoints.
"""
from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_apps.common.lake import join
from spark_apps.common.session import get_spark
from spark_apps.streaming.energy_weather import layout, transforms
from spark_apps.streaming.energy_weather.regions import format_region_cities, parse_region_cities
from spark_apps.streaming.kafka_io import read_kafka_stream, write_kafka_stream
from spark_apps.streaming.supervision import (
    add_streaming_arguments,
    prepare_status,
    run_until_stopped,
    trigger_options,
)

APP_NAME = "energy_weather_streaming"
JOINED_QUERY = "energy_joined"
UNMATCHED_QUERY = "energy_unmatched"
DEAD_LETTERS_QUERY = "energy_dead_letters"
READINGS_TOPIC = "energy-readings"
WEATHER_TOPIC = "weather-raw"
DEAD_LETTER_TOPIC = "energy-dead-letter"
DEFAULT_TRIGGER_SECONDS = 10.0
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 100_000


def _source(spark, bootstrap, topic, kafka_options, starting_offsets, max_offsets_per_trigger) -> DataFrame:
    return read_kafka_stream(spark, bootstrap, topic, kafka_options, startingOffsets=starting_offsets,
                             maxOffsetsPerTrigger=max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER)


def start_queries(
    spark: SparkSession,
    bootstrap: str,
    lake_uri: str,
    checkpoint: str,
    region_cities: dict[str, int],
    readings_topic: str = READINGS_TOPIC,
    weather_topic: str = WEATHER_TOPIC,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    before: str = transforms.DEFAULT_BEFORE,
    after: str = transforms.DEFAULT_AFTER,
    readings_watermark: str = transforms.DEFAULT_READINGS_WATERMARK,
    weather_watermark: str = transforms.DEFAULT_WEATHER_WATERMARK,
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    kafka_options: str | dict | None = None,
) -> list[StreamingQuery]:
    """Start the three queries (checkpoints ``<checkpoint>/joined``, ``/unmatched``, ``/dead_letters``)."""
    trigger = trigger_options(available_now, trigger_seconds)

    def source(topic: str) -> DataFrame:
        return _source(spark, bootstrap, topic, kafka_options, starting_offsets, max_offsets_per_trigger)

    def nearest() -> DataFrame:
        readings = transforms.readings(transforms.checked_readings(source(readings_topic), region_cities))
        weather = transforms.weather_by_region(source(weather_topic), region_cities)
        return transforms.nearest_weather(readings, weather, before, after, readings_watermark, weather_watermark)

    queries = []
    for name, rows, folder in ((JOINED_QUERY, transforms.joined_rows(nearest()), layout.JOINED_DIR),
                               (UNMATCHED_QUERY, transforms.unmatched_rows(nearest()), layout.UNMATCHED_DIR)):
        queries.append(
            rows.observe(name, F.count(F.lit(1)).alias("rows"))
            .writeStream.queryName(name).outputMode("append").format("parquet")
            .partitionBy(layout.PARTITION_COLUMN)
            .option("path", join(lake_uri, folder))
            .option("checkpointLocation", join(checkpoint, folder.rpartition("/")[2]))
            .trigger(**trigger).start())
    letters = transforms.dead_letters(transforms.checked_readings(source(readings_topic), region_cities))
    queries.append(
        write_kafka_stream(letters.observe(DEAD_LETTERS_QUERY, F.count(F.lit(1)).alias("rows")), bootstrap,
                           join(checkpoint, "dead_letters"), dead_letter_topic, kafka_options)
        .queryName(DEAD_LETTERS_QUERY).outputMode("append").trigger(**trigger).start())
    return queries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Energy readings joined with the weather of their region "
                                                 "(stream-stream join) -> lake Parquet")
    add_streaming_arguments(parser, trigger_seconds=DEFAULT_TRIGGER_SECONDS)
    parser.add_argument("--lake", required=True, help="lake URI (energy/joined/, energy/unmatched/ under it)")
    parser.add_argument("--readings-topic", default=READINGS_TOPIC)
    parser.add_argument("--weather-topic", default=WEATHER_TOPIC)
    parser.add_argument("--dead-letter-topic", default=DEAD_LETTER_TOPIC)
    parser.add_argument("--region-cities", default=format_region_cities(parse_region_cities(None)),
                        help="region=city_id,... : which weather city each region gets")
    parser.add_argument("--before", default=transforms.DEFAULT_BEFORE,
                        help="how long before a reading an observation may be and still match")
    parser.add_argument("--after", default=transforms.DEFAULT_AFTER,
                        help="how long after a reading an observation may be and still match")
    parser.add_argument("--readings-watermark", default=transforms.DEFAULT_READINGS_WATERMARK)
    parser.add_argument("--weather-watermark", default=transforms.DEFAULT_WEATHER_WATERMARK)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark(APP_NAME)
    if args.status_uri:
        prepare_status(spark, args.status_uri)
    queries = start_queries(
        spark, args.bootstrap, args.lake, args.checkpoint, parse_region_cities(args.region_cities),
        args.readings_topic, args.weather_topic, args.dead_letter_topic, args.before, args.after,
        args.readings_watermark, args.weather_watermark, args.trigger_seconds, args.available_now,
        args.max_offsets_per_trigger, args.starting_offsets, args.kafka_options,
    )
    if args.status_uri:
        run_until_stopped(spark, queries, args.status_uri)
    else:
        for query in queries:
            query.awaitTermination()


if __name__ == "__main__":
    main()
