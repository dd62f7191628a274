"""Plain DataFrame functions of the weather pipeline (batch and streaming alike), all in Spark SQL
(no Python UDF: every record is checked and parsed in the JVM).

Input is a Kafka-shaped frame as Spark's Kafka source gives it: ``key``, ``value`` (binary),
``topic``, ``partition``, ``offset``, ``timestamp``. Each value should be one OpenWeatherMap
current-weather response (``/data/2.5/weather``, ``units=metric``), unchanged.

:func:`checked` gives every record a ``reason`` (null for a valid response) by the checks of
:data:`FIELDS`, made on the record parsed into a VARIANT (``try_parse_json``: the exact JSON
type of every field, present or not), and the typed values of the response parsed by
``from_json`` with :data:`RESPONSE_SCHEMA` (the same field list). Reasons, the first failing
check wins (each lists every field it failed on, comma separated):

* ``empty_value`` - null or empty record;
* ``invalid_json`` - not parseable as JSON (truncated, not UTF-8, duplicate keys);
* ``not_a_json_object`` - an array, number, string ...;
* ``api_error:<cod>`` - an error body of the API (``cod`` other than 200, e.g. ``{"cod": "404",
  "message": "city not found"}``);
* ``missing_field:<paths>`` - a required field absent or JSON null (an absent object is named,
  not each of its fields);
* ``wrong_type:<paths>`` - e.g. a string where a number belongs, a fraction where an integer
  belongs, ``weather`` not a non-empty array of ``{id, main, description, icon}``;
* ``out_of_range:<paths>`` - a value outside its plausible range (temperatures in °C between
  -100 and 70 - a response in Kelvin, the API's default unit, fails here -, humidity and
  clouds 0-100 %, wind direction 0-360°, coordinates, ...), or ``temp_min`` above ``temp_max``;
* ``dt_in_future`` - observed more than an hour after the record reached Kafka.

Unknown extra fields are allowed (the API adds fields over time).

:func:`observations` gives the valid records' rows (:data:`OBSERVATION_COLUMNS`), with the
observation time (``observed_at``, from ``dt``), its UTC day and the Kafka coordinates;
:func:`dead_letters` the others as dead letters (the metrics pipeline's format: key
``topic:partition:offset``, JSON value with the reason, those coordinates and the raw value as
text and base64); :func:`deduplicate_batch` keeps one row per (city, ``dt``) of a static frame
(the API returns the same observation until the station reports again), and
:func:`hourly_aggregates` the per-city event-time hours with a watermark.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

DEFAULT_WATERMARK = "2 hours"
# An observation stamped more than this after its record reached Kafka is refused.
MAX_FUTURE_S = 3600


@dataclass(frozen=True)
class Field:
    path: str  # dotted path in the response; a segment may start with a digit ("rain.1h")
    kind: str  # "number", "integer", "string"
    required: bool
    low: float | None = None
    high: float | None = None


# Objects of the response: (path, required). A field of an absent optional object is not checked.
OBJECTS: tuple[tuple[str, bool], ...] = (
    ("coord", True), ("main", True), ("wind", True), ("clouds", True), ("sys", True),
    ("rain", False), ("snow", False),
)
# The current-weather response (https://openweathermap.org/current#fields_json), units=metric.
FIELDS: tuple[Field, ...] = (
    Field("coord.lon", "number", True, -180, 180),
    Field("coord.lat", "number", True, -90, 90),
    Field("base", "string", False),
    Field("main.temp", "number", True, -100, 70),
    Field("main.feels_like", "number", True, -120, 80),
    Field("main.temp_min", "number", True, -100, 70),
    Field("main.temp_max", "number", True, -100, 70),
    Field("main.pressure", "integer", True, 100, 1200),
    Field("main.humidity", "integer", True, 0, 100),
    Field("main.sea_level", "integer", True, 100, 1200),
    Field("main.grnd_level", "integer", True, 100, 1200),
    Field("visibility", "integer", True, 0, 100000),
    Field("wind.speed", "number", True, 0, 150),
    Field("wind.deg", "integer", True, 0, 360),
    Field("wind.gust", "number", False, 0, 200),
    Field("clouds.all", "integer", True, 0, 100),
    Field("rain.1h", "number", False, 0, 500),
    Field("rain.3h", "number", False, 0, 1000),
    Field("snow.1h", "number", False, 0, 500),
    Field("snow.3h", "number", False, 0, 1000),
    Field("dt", "integer", True, 946684800, None),  # 2000-01-01 onwards
    Field("sys.type", "integer", False),
    Field("sys.id", "integer", False),
    Field("sys.country", "string", False),
    Field("sys.sunrise", "integer", False, 0, None),
    Field("sys.sunset", "integer", False, 0, None),
    Field("timezone", "integer", True, -50400, 50400),  # seconds from UTC, +-14 h
    Field("id", "integer", True, 1, None),
    Field("name", "string", True),
    Field("cod", "integer", True),
)
# weather[]: a non-empty array of conditions, each with these fields (all required).
WEATHER_ITEM_FIELDS: tuple[Field, ...] = (
    Field("id", "integer", True), Field("main", "string", True),
    Field("description", "string", True), Field("icon", "string", True),
)

_SPARK_TYPES = {"number": T.DoubleType(), "integer": T.LongType(), "string": T.StringType()}


def _response_schema() -> T.StructType:
    nested: dict[str, list[T.StructField]] = {}
    top: list[T.StructField] = []
    for field in FIELDS:
        parent, _, leaf = field.path.rpartition(".")
        target = nested.setdefault(parent, []) if parent else top
        target.append(T.StructField(leaf, _SPARK_TYPES[field.kind]))
    item = T.StructType([T.StructField(f.path, _SPARK_TYPES[f.kind]) for f in WEATHER_ITEM_FIELDS])
    top.append(T.StructField("weather", T.ArrayType(item)))
    top += [T.StructField(name, T.StructType(fields)) for name, fields in nested.items()]
    return T.StructType(top)


RESPONSE_SCHEMA = _response_schema()

OBSERVATION_COLUMNS = [
    "city_id", "day", "observed_at", "observed_at_ms", "city_name", "country", "lon", "lat",
    "condition_id", "condition", "description", "icon",
    "temp", "feels_like", "temp_min", "temp_max", "pressure", "humidity", "sea_level", "grnd_level",
    "visibility", "wind_speed", "wind_deg", "wind_gust", "clouds", "rain_1h", "snow_1h",
    "sunrise_ms", "sunset_ms", "timezone_s",
    "source_topic", "source_partition", "source_offset", "ingested_at_ms",
]
HOURLY_COLUMNS = [
    "city_id", "month", "hour", "hour_ms", "city_name", "observations",
    "temp_min", "temp_max", "temp_mean", "humidity_min", "humidity_max", "humidity_mean",
    "wind_speed_mean", "wind_speed_max", "wind_gust_max", "rain_1h_sum", "rain_1h_max", "snow_1h_sum",
]


# --- checks --------------------------------------------------------------------------------
# Every check runs over arrays, so the plan stays small (one expression per field, then a few
# higher-order functions over all of them) - Spark plans each micro-batch anew, and a CASE per
# field and reason made planning take most of a minute. Steps, each a projection of its own:
# 1. parse: the VARIANT (exact JSON types) and the typed struct (``from_json``);
# 2. per checked path its JSON type (``schema_of_variant``: ``BIGINT``, ``DECIMAL(3,2)``,
#    ``DOUBLE``, ``STRING``, ``OBJECT<...>``, ``ARRAY<...>``, ``VOID`` for JSON null, SQL null
#    when absent), per range-checked field its typed value;
# 3. the lists of paths that are missing, of the wrong type, out of range;
# 4. the reason.


@dataclass(frozen=True)
class _Check:
    path: str
    kind: str  # number, integer, string, object, weather
    required: bool
    parent: int  # index of the enclosing object's check, -1 at the top


def _checks() -> list[_Check]:
    checks = [_Check(path, "object", required, -1) for path, required in OBJECTS]
    checks.append(_Check("weather", "weather", True, -1))
    index = {c.path: i for i, c in enumerate(checks)}
    for field in FIELDS:
        parent = field.path.rpartition(".")[0]
        checks.append(_Check(field.path, field.kind, field.required, index[parent] if parent else -1))
    return checks


CHECKS = _checks()
RANGED = [f for f in FIELDS if f.low is not None or f.high is not None]


def _json_path(path: str) -> str:
    return "$" + "".join(f"['{segment}']" for segment in path.split("."))


def _type_of(variant: Column, path: str) -> Column:
    return F.schema_of_variant(F.variant_get(variant, _json_path(path), "variant"))


def _has_kind(type_: Column, kind: str) -> Column:
    if kind == "integer":
        return type_ == F.lit("BIGINT")
    if kind == "number":
        return type_.isin("BIGINT", "DOUBLE", "FLOAT") | type_.startswith("DECIMAL")
    if kind == "string":
        return type_ == F.lit("STRING")
    if kind == "object":
        return type_.startswith("OBJECT")
    raise ValueError(kind)


def _weather_items_ok(variant: Column) -> Column:
    """``weather`` is a non-empty array of objects with the fields of :data:`WEATHER_ITEM_FIELDS`."""
    items = F.try_variant_get(variant, "$['weather']", "array<variant>")

    def item_ok(item: Column) -> Column:
        ok = F.lit(True)
        for field in WEATHER_ITEM_FIELDS:
            ok = ok & F.coalesce(_has_kind(_type_of(item, field.path), field.kind), F.lit(False))
        return ok

    return F.coalesce((F.size(items) > 0) & F.forall(items, item_ok), F.lit(False))


def _typed(parsed: Column, path: str) -> Column:
    column = parsed
    for segment in path.split("."):
        column = column.getField(segment)
    return column


def _literal_array(values, dtype: str) -> Column:
    return F.array(*[F.lit(v) for v in values]).cast(f"array<{dtype}>")


def _names_where(count: int, names: list[str], predicate) -> Column:
    """``names[i]`` for every ``i < count`` where ``predicate(i)`` holds (an array, maybe empty)."""
    indices = F.sequence(F.lit(0), F.lit(count - 1))
    labels = _literal_array(names, "string")
    return F.transform(F.filter(indices, lambda i: F.coalesce(predicate(i), F.lit(False))), lambda i: labels[i])


def _problem_lists(types: Column, weather_ok: Column, values: Column, temp_order_bad: Column) -> dict[str, Column]:
    kinds = _literal_array([c.kind for c in CHECKS], "string")
    required = _literal_array([c.required for c in CHECKS], "boolean")
    parents = _literal_array([c.parent for c in CHECKS], "int")
    paths = [c.path for c in CHECKS]

    def missing(t: Column) -> Column:
        return t.isNull() | (t == F.lit("VOID"))

    def parent_ok(i: Column) -> Column:
        return (parents[i] < 0) | types[F.greatest(parents[i], F.lit(0))].startswith("OBJECT")

    def kind_ok(i: Column) -> Column:
        t, kind = types[i], kinds[i]
        return (F.when(kind == "integer", _has_kind(t, "integer"))
                .when(kind == "number", _has_kind(t, "number"))
                .when(kind == "string", _has_kind(t, "string"))
                .when(kind == "object", _has_kind(t, "object"))
                .otherwise(weather_ok))

    lows = _literal_array([float("-inf") if f.low is None else float(f.low) for f in RANGED], "double")
    highs = _literal_array([float("inf") if f.high is None else float(f.high) for f in RANGED], "double")
    out_of_range = _names_where(len(RANGED), [f.path for f in RANGED],
                                lambda j: (values[j] < lows[j]) | (values[j] > highs[j]))
    return {
        "missing": _names_where(len(CHECKS), paths, lambda i: required[i] & parent_ok(i) & missing(types[i])),
        "wrong": _names_where(len(CHECKS), paths, lambda i: parent_ok(i) & ~missing(types[i]) & ~kind_ok(i)),
        "out_of_range": F.when(temp_order_bad, F.array_append(out_of_range, F.lit("main.temp_min>main.temp_max")))
        .otherwise(out_of_range),
    }


def checked(kafka_df: DataFrame) -> DataFrame:
    """Kafka records with ``reason`` (null: a valid response), ``response`` (the typed parse,
    :data:`RESPONSE_SCHEMA`) and the Kafka columns (``raw`` = value, topic, partition, offset,
    ``ingest_s`` = the record's Kafka timestamp in epoch seconds)."""
    text = F.col("value").cast("string")
    kafka = ["raw", "topic", "partition", "offset", "ingest_s"]
    parsed = kafka_df.select(
        F.col("value").alias("raw"), "topic",
        F.col("partition").cast("int").alias("partition"), F.col("offset").cast("long").alias("offset"),
        F.unix_seconds(F.col("timestamp")).alias("ingest_s"),
        F.try_parse_json(text).alias("variant"),
        F.from_json(text, RESPONSE_SCHEMA).alias("response"),
    )
    v, r = F.col("variant"), F.col("response")
    typed = parsed.select(
        *kafka, "response",
        F.col("variant").isNull().alias("invalid_json"),
        F.schema_of_variant(v).startswith("OBJECT").alias("is_object"),
        F.try_variant_get(v, "$['cod']", "string").alias("cod"),
        F.array(*[_type_of(v, c.path) for c in CHECKS]).alias("types"),
        _weather_items_ok(v).alias("weather_ok"),
        F.array(*[_typed(r, f.path).cast("double") for f in RANGED]).alias("values"),
        F.coalesce(r["main"]["temp_min"] > r["main"]["temp_max"], F.lit(False)).alias("temp_order_bad"),
    )
    lists = _problem_lists(F.col("types"), F.col("weather_ok"), F.col("values"), F.col("temp_order_bad"))
    problems = typed.select(
        *kafka, "response", "invalid_json", "is_object", "cod",
        *[column.alias(name) for name, column in lists.items()],
    )

    def listed(name: str, prefix: str):
        return F.size(F.col(name)) > 0, F.concat(F.lit(prefix), F.array_join(F.col(name), ","))

    raw = F.col("raw")
    reason = (
        F.when(raw.isNull() | (F.length(raw) == 0), F.lit("empty_value"))
        .when(F.col("invalid_json"), F.lit("invalid_json"))
        .when(~F.col("is_object"), F.lit("not_a_json_object"))
        .when(F.col("cod").isNotNull() & (F.col("cod") != F.lit("200")), F.concat(F.lit("api_error:"), F.col("cod")))
    )
    for name, prefix in (("missing", "missing_field:"), ("wrong", "wrong_type:"), ("out_of_range", "out_of_range:")):
        condition, text_ = listed(name, prefix)
        reason = reason.when(condition, text_)
    reason = reason.when(F.col("response")["dt"] > F.col("ingest_s") + F.lit(MAX_FUTURE_S), F.lit("dt_in_future"))
    return problems.select(reason.alias("reason"), "response", *kafka)


# --- outputs -------------------------------------------------------------------------------


def observations(checked_df: DataFrame) -> DataFrame:
    """The valid records of :func:`checked` as observation rows (:data:`OBSERVATION_COLUMNS`):
    times as epoch milliseconds (``*_ms``) for Cassandra, ``observed_at`` as a timestamp for
    event-time windows, ``day`` its UTC date; the first condition of ``weather[]``."""
    r = F.col("response")
    first = F.get(r["weather"], 0)
    observed_at = F.timestamp_seconds(r["dt"])
    return checked_df.where(F.col("reason").isNull()).select(
        r["id"].alias("city_id"),
        F.to_date(observed_at).alias("day"),  # the session time zone is UTC (spark_apps/common/session.py)
        observed_at.alias("observed_at"),
        (r["dt"] * 1000).alias("observed_at_ms"),
        r["name"].alias("city_name"),
        r["sys"]["country"].alias("country"),
        r["coord"]["lon"].alias("lon"), r["coord"]["lat"].alias("lat"),
        first["id"].cast("int").alias("condition_id"), first["main"].alias("condition"),
        first["description"].alias("description"), first["icon"].alias("icon"),
        r["main"]["temp"].alias("temp"), r["main"]["feels_like"].alias("feels_like"),
        r["main"]["temp_min"].alias("temp_min"), r["main"]["temp_max"].alias("temp_max"),
        r["main"]["pressure"].cast("int").alias("pressure"), r["main"]["humidity"].cast("int").alias("humidity"),
        r["main"]["sea_level"].cast("int").alias("sea_level"), r["main"]["grnd_level"].cast("int").alias("grnd_level"),
        r["visibility"].cast("int").alias("visibility"),
        r["wind"]["speed"].alias("wind_speed"), r["wind"]["deg"].cast("int").alias("wind_deg"),
        r["wind"]["gust"].alias("wind_gust"),
        r["clouds"]["all"].cast("int").alias("clouds"),
        r["rain"].getField("1h").alias("rain_1h"), r["snow"].getField("1h").alias("snow_1h"),
        (r["sys"]["sunrise"] * 1000).alias("sunrise_ms"), (r["sys"]["sunset"] * 1000).alias("sunset_ms"),
        r["timezone"].cast("int").alias("timezone_s"),
        F.col("topic").alias("source_topic"), F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"), (F.col("ingest_s") * 1000).alias("ingested_at_ms"),
    )


def dead_letters(checked_df: DataFrame) -> DataFrame:
    """The invalid records of :func:`checked` as Kafka records (``key``, ``value``) for the
    dead-letter topic, in the metrics pipeline's format (spark_apps/streaming/metrics/codec.py)."""
    text = F.col("raw").cast("string")
    body = F.struct(
        F.col("reason").alias("reason"), F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"), F.col("offset").alias("source_offset"),
        F.when(F.col("raw").isNotNull() & F.is_valid_utf8(text), text).alias("raw_value_text"),
        F.base64(F.col("raw")).alias("raw_value_base64"),
    )
    return checked_df.where(F.col("reason").isNotNull()).select(
        F.concat_ws(":", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string"))
        .cast("binary").alias("key"),
        F.to_json(body).cast("binary").alias("value"),
    )


def deduplicate_batch(rows: DataFrame) -> DataFrame:
    """One row per (city, ``dt``) of a static frame of observations: the copy read last (highest
    Kafka partition and offset; one city's records share a partition, keyed by city id), so a
    replay of the same records keeps the same copy."""
    latest = F.max_by(F.struct(*rows.columns), F.struct("source_partition", "source_offset"))
    return rows.groupBy("city_id", "observed_at_ms").agg(latest.alias("row")).select("row.*")


def hourly_aggregates(observation_rows: DataFrame, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """Per city and UTC hour of observation (event time): count, min/max/mean temperature and
    humidity, mean and max wind speed, max gust, the sum and max of ``rain.1h`` and the sum of
    ``snow.1h`` (a response without rain reports none: 0).

    Observations are deduplicated on (city, ``dt``) first. On a stream the dedup state and the
    windows are bounded by a watermark on the observation time: an observation more than
    ``watermark`` older than the newest one seen is late and left out of the hours (it still
    reaches ``weather.observations``, which another query writes); a window stays open until the
    watermark passes its end. With the update output mode each micro-batch emits the hours it
    changed, with their totals so far (absolute values: an upsert, so a replay changes nothing).

    ``rain_1h_sum`` adds the last-hour amounts the observations of the hour reported, which
    counts the same rain several times when a station reported more than once that hour;
    ``rain_1h_max`` is the better estimate of the hour's rain."""
    deduped = (observation_rows.withWatermark("observed_at", watermark)
               .dropDuplicates(["city_id", "observed_at"]))
    window = F.window("observed_at", "1 hour")
    rain = F.coalesce(F.col("rain_1h"), F.lit(0.0))
    aggregated = deduped.groupBy("city_id", window.alias("window")).agg(
        F.max_by("city_name", "observed_at").alias("city_name"),
        F.count(F.lit(1)).cast("int").alias("observations"),
        F.min("temp").alias("temp_min"), F.max("temp").alias("temp_max"), F.avg("temp").alias("temp_mean"),
        F.min("humidity").alias("humidity_min"), F.max("humidity").alias("humidity_max"),
        F.avg("humidity").alias("humidity_mean"),
        F.avg("wind_speed").alias("wind_speed_mean"), F.max("wind_speed").alias("wind_speed_max"),
        F.max("wind_gust").alias("wind_gust_max"),
        F.sum(rain).alias("rain_1h_sum"), F.max(rain).alias("rain_1h_max"),
        F.sum(F.coalesce(F.col("snow_1h"), F.lit(0.0))).alias("snow_1h_sum"),
    )
    start = F.col("window.start")
    return aggregated.select(
        "city_id", F.date_format(start, "yyyy-MM").alias("month"), start.alias("hour"),
        F.unix_millis(start).alias("hour_ms"), *HOURLY_COLUMNS[4:],
    )


def cassandra_observation_values(rows: DataFrame) -> DataFrame:
    """Observation rows in the order of ``tables.OBSERVATION_COLUMNS`` (the INSERT's markers)."""
    return rows.select(
        "city_id", "day", "observed_at_ms", "city_name", "country", "lon", "lat",
        "condition_id", "condition", "description", "icon",
        "temp", "feels_like", "temp_min", "temp_max", "pressure", "humidity", "sea_level", "grnd_level",
        "visibility", "wind_speed", "wind_deg", "wind_gust", "clouds", "rain_1h", "snow_1h",
        "sunrise_ms", "sunset_ms", "timezone_s",
        "source_topic", "source_partition", "source_offset", "ingested_at_ms",
    )


def cassandra_hourly_values(hourly: DataFrame) -> DataFrame:
    """Hourly rows in the order of ``tables.HOURLY_COLUMNS``."""
    return hourly.select("city_id", "month", "hour_ms", *HOURLY_COLUMNS[4:])


def mysql_hourly_values(hourly: DataFrame) -> DataFrame:
    """Hourly rows for MySQL ``weather_hourly`` (``hour_start`` as a UTC wall-clock DATETIME)."""
    return hourly.select("city_id", F.col("hour").cast("timestamp_ntz").alias("hour_start"), *HOURLY_COLUMNS[4:])
