"""Plain DataFrame functions of the energy x weather join (batch and streaming alike), in Spark SQL
(no Python UDF).

Readings (``energy-readings``, include/producers/energy.py): :func:`checked_readings` gives every
Kafka record a ``reason`` (null: a valid reading), checked on the record parsed into a VARIANT
(``try_parse_json``: the exact JSON type of every field). The first failing check wins:

* ``empty_value``; ``invalid_json``; ``not_a_json_object``;
* ``missing_field:<fields>`` - absent or JSON null (comma separated, in :data:`READING_FIELDS` order);
* ``wrong_type:<fields>`` - e.g. ``kwh`` a string, ``interval_minutes`` a fraction, ``reading_time``
  not an ISO-8601 UTC time (``2026-12-02T20:15:00Z``);
* ``out_of_range:<fields>`` - ``kwh`` negative or above :data:`MAX_KW` for the interval,
  ``interval_minutes`` outside 1-1440, an empty ``household_id``;
* ``unknown_region:<region>`` - a region the mapping (regions.py) does not know: it has no weather;
* ``reading_in_future`` - a reading time more than an hour after the record reached Kafka.

Weather (``weather-raw``): the weather job's own checks and typing
(:func:`spark_apps.streaming.weather.transforms.checked` and ``observations``), so both jobs agree
on what a valid observation is; invalid responses are dropped here (the weather job dead-letters
them), each observation goes to every region mapped to its city (:func:`weather_by_region`).

The join (:func:`nearest_weather`): readings and observations with a watermark each, a
stream-stream **left outer** join on region and the time range ``weather_time BETWEEN reading_time
- before AND reading_time + after``, then one row per reading (household, reading time): the
observation nearest to the reading time, the earlier one on a tie, by an event-time aggregation
(``min_by``) in append mode - Spark's own operators, chained (a join followed by an aggregation,
each finalised by the watermark). A reading without any observation in its range comes out of the
outer join with nulls once the watermark has passed ``reading_time + after``; the aggregation
keeps it as one row without weather. A reading sent twice (same household and time) is one row too.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_apps.streaming.energy_weather.layout import JOINED_COLUMNS, PARTITION_COLUMN, UNMATCHED_COLUMNS
from spark_apps.streaming.energy_weather.regions import DEFAULT_WEATHER_AFTER, DEFAULT_WEATHER_BEFORE
from spark_apps.streaming.weather import transforms as weather

READING_FIELDS: tuple[tuple[str, str], ...] = (
    ("household_id", "string"), ("region", "string"), ("reading_time", "string"),
    ("interval_minutes", "integer"), ("kwh", "number"),
)
TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ssX"
MAX_KW = 100.0  # mean power over an interval above this is no household's
MAX_FUTURE_S = 3600
DEFAULT_BEFORE = DEFAULT_WEATHER_BEFORE
DEFAULT_AFTER = DEFAULT_WEATHER_AFTER
# A reading is sent up to an interval (15 min) after its time, a late one 5 min more; weather
# observations arrive up to ~20 min after their dt (the API refreshes every 10 min, polled every 10).
DEFAULT_READINGS_WATERMARK = "30 minutes"
DEFAULT_WEATHER_WATERMARK = "30 minutes"
UNMATCHED_REASON = "no weather within range"
FAR = 1 << 62  # distance of "no observation": after every real one


def _kind_ok(type_: Column, kind: str) -> Column:
    if kind == "integer":
        return type_ == F.lit("BIGINT")
    if kind == "number":
        return type_.isin("BIGINT", "DOUBLE", "FLOAT") | type_.startswith("DECIMAL")
    return type_ == F.lit("STRING")


def _names(conditions: list[tuple[str, Column]]) -> Column:
    """The names whose condition holds, comma separated ('' when none)."""
    return F.concat_ws(",", *[F.when(F.coalesce(cond, F.lit(False)), F.lit(name)) for name, cond in conditions])


def checked_readings(kafka_df: DataFrame, region_cities: dict[str, int]) -> DataFrame:
    """Kafka records with ``reason`` (null: valid), the typed reading (``household_id``, ``region``,
    ``reading_time`` timestamp, ``interval_minutes``, ``kwh``) and the Kafka columns (``raw``,
    ``topic``, ``partition``, ``offset``, ``ingest_s``) that :func:`weather.dead_letters` needs."""
    text = F.col("value").cast("string")
    kafka = ["raw", "topic", "partition", "offset", "ingest_s"]
    parsed = kafka_df.select(
        F.col("value").alias("raw"), "topic", F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"), F.unix_seconds(F.col("timestamp")).alias("ingest_s"),
        F.try_parse_json(text).alias("v"),
    )
    v = F.col("v")
    types = {name: F.schema_of_variant(F.variant_get(v, f"$['{name}']", "variant")) for name, _ in READING_FIELDS}
    typed = parsed.select(
        *kafka, F.col("v").isNull().alias("invalid_json"),
        F.schema_of_variant(v).startswith("OBJECT").alias("is_object"),
        *[t.alias(f"type_{name}") for name, t in types.items()],
        F.try_variant_get(v, "$['household_id']", "string").alias("household_id"),
        F.try_variant_get(v, "$['region']", "string").alias("region"),
        F.try_to_timestamp(F.try_variant_get(v, "$['reading_time']", "string"), F.lit(TIME_FORMAT))
        .alias("reading_time"),
        F.try_variant_get(v, "$['interval_minutes']", "int").alias("interval_minutes"),
        F.try_variant_get(v, "$['kwh']", "double").alias("kwh"),
    )

    def t(name: str) -> Column:
        return F.col(f"type_{name}")

    def absent(name: str) -> Column:
        return t(name).isNull() | (t(name) == F.lit("VOID"))

    missing = _names([(name, absent(name)) for name, _ in READING_FIELDS])
    wrong = _names([(name, ~absent(name) & ~_kind_ok(t(name), kind)) for name, kind in READING_FIELDS]
                   + [("reading_time", ~absent("reading_time") & _kind_ok(t("reading_time"), "string")
                       & F.col("reading_time").isNull())])
    hours = F.col("interval_minutes") / F.lit(60.0)
    bad_interval = (F.col("interval_minutes") < 1) | (F.col("interval_minutes") > 1440)
    out_of_range = _names([
        ("household_id", F.length(F.trim(F.col("household_id"))) == 0),
        ("interval_minutes", bad_interval),
        # The kWh bound scales with the interval: only checked against a plausible one.
        ("kwh", (F.col("kwh") < 0) | (~bad_interval & (F.col("kwh") > F.lit(MAX_KW) * hours))),
    ])
    known = F.array(*[F.lit(r) for r in region_cities]) if region_cities else F.array().cast("array<string>")
    raw = F.col("raw")
    reason = (
        F.when(raw.isNull() | (F.length(raw) == 0), F.lit("empty_value"))
        .when(F.col("invalid_json"), F.lit("invalid_json"))
        .when(~F.col("is_object"), F.lit("not_a_json_object"))
        .when(missing != "", F.concat(F.lit("missing_field:"), missing))
        .when(wrong != "", F.concat(F.lit("wrong_type:"), wrong))
        .when(out_of_range != "", F.concat(F.lit("out_of_range:"), out_of_range))
        .when(~F.array_contains(known, F.col("region")), F.concat(F.lit("unknown_region:"), F.col("region")))
        .when(F.unix_seconds(F.col("reading_time")) > F.col("ingest_s") + F.lit(MAX_FUTURE_S),
              F.lit("reading_in_future"))
    )
    return typed.select(reason.alias("reason"), "household_id", "region", "reading_time", "interval_minutes", "kwh",
                        *kafka)


def readings(checked: DataFrame) -> DataFrame:
    """The valid readings of :func:`checked_readings`, with their source coordinates."""
    return checked.where(F.col("reason").isNull()).select(
        "household_id", "region", "reading_time", "interval_minutes", "kwh",
        F.col("partition").alias("source_partition"), F.col("offset").alias("source_offset"))


def dead_letters(checked: DataFrame) -> DataFrame:
    """The invalid records as dead letters (key ``topic:partition:offset``; JSON with the reason, those
    coordinates and the raw value): the weather job's format, by its own function."""
    return weather.dead_letters(checked)


def city_regions(region_cities: dict[str, int]) -> dict[int, list[str]]:
    by_city: dict[int, list[str]] = {}
    for region, city in region_cities.items():
        by_city.setdefault(int(city), []).append(region)
    return by_city


def weather_by_region(weather_kafka_df: DataFrame, region_cities: dict[str, int]) -> DataFrame:
    """Valid observations of ``weather-raw`` (the weather job's checks), one row per region of their
    city (cities of no region dropped): ``weather_region``, ``city_id``, ``weather_time``,
    ``temperature_c``, ``humidity_pct``."""
    observations = weather.observations(weather.checked(weather_kafka_df))
    pairs = []
    for city, regions in sorted(city_regions(region_cities).items()):
        pairs += [F.lit(city).cast("bigint"), F.array(*[F.lit(r) for r in regions])]
    lookup = F.create_map(*pairs) if pairs else F.create_map().cast("map<bigint,array<string>>")
    return observations.select(
        F.explode(F.element_at(lookup, F.col("city_id").cast("bigint"))).alias("weather_region"),
        F.col("city_id").cast("bigint").alias("city_id"), F.col("observed_at").alias("weather_time"),
        F.col("temp").cast("double").alias("temperature_c"), F.col("humidity").cast("double").alias("humidity_pct"),
    )


def nearest_weather(reading_rows: DataFrame, weather_rows: DataFrame, before: str = DEFAULT_BEFORE,
                    after: str = DEFAULT_AFTER, readings_watermark: str = DEFAULT_READINGS_WATERMARK,
                    weather_watermark: str = DEFAULT_WEATHER_WATERMARK) -> DataFrame:
    """One row per reading (household, reading time): the reading's columns and its nearest
    observation in ``[reading_time - before, reading_time + after]`` (weather columns null when none).

    State stays bounded: the join keeps a reading until the weather watermark passes
    ``reading_time + after`` (no observation that could match can come any more; then an unmatched
    reading is emitted with nulls) and an observation until the readings' watermark passes
    ``weather_time + before``; the aggregation keeps a reading's group until the watermark passes
    its reading time. A reading or an observation older than its watermark when it arrives is
    dropped by Spark (``numRowsDroppedByWatermark`` in the query's progress)."""
    r = reading_rows.withWatermark("reading_time", readings_watermark)
    w = weather_rows.withWatermark("weather_time", weather_watermark)
    condition = (
        (F.col("region") == F.col("weather_region"))
        & (F.col("weather_time") >= F.col("reading_time") - F.expr(f"INTERVAL {before}"))
        & (F.col("weather_time") <= F.col("reading_time") + F.expr(f"INTERVAL {after}"))
    )
    joined = r.join(w, condition, "left_outer")
    distance = F.coalesce(F.abs(F.unix_millis("weather_time") - F.unix_millis("reading_time")), F.lit(FAR))
    # Ties: the earlier observation; then the copy read first (a reading sent twice).
    order = F.struct(distance.alias("distance"), F.col("weather_time"), F.col("source_partition"),
                     F.col("source_offset"))
    row = F.struct("region", "interval_minutes", "kwh", "city_id", "weather_time", "temperature_c", "humidity_pct")
    return (joined.groupBy("household_id", "reading_time")
            .agg(F.min_by(row, order).alias("nearest"))
            .select("household_id", "reading_time", "nearest.*"))


def joined_rows(nearest: DataFrame) -> DataFrame:
    """The readings that had weather, as ``energy/joined/`` rows (layout.JOINED_COLUMNS)."""
    rows = nearest.where(F.col("weather_time").isNotNull()).withColumn(PARTITION_COLUMN, F.to_date("reading_time"))
    return rows.select(*[F.col(name).cast(kind).alias(name) for name, kind in JOINED_COLUMNS])


def unmatched_rows(nearest: DataFrame) -> DataFrame:
    """The readings without weather in range, as ``energy/unmatched/`` rows (layout.UNMATCHED_COLUMNS)."""
    rows = (nearest.where(F.col("weather_time").isNull())
            .withColumn("reason", F.lit(UNMATCHED_REASON))
            .withColumn(PARTITION_COLUMN, F.to_date("reading_time")))
    return rows.select(*[F.col(name).cast(kind).alias(name) for name, kind in UNMATCHED_COLUMNS])
