"""The eleven air-quality analyses, each a plain function of DataFrames -> DataFrame.

Every function takes the hourly dataset in PARQUET_SCHEMA (only the columns it
needs: ``station``, ``from_ts`` and measures), the two marked ``reads_daily`` also the
daily dataset (DAILY_SCHEMA), and returns the rows of one results table. ``JOBS`` maps a
job name to its function, MySQL table and primary key; result column names are plain
snake_case because the MySQL sink accepts only ``[A-Za-z_][A-Za-z0-9_]*`` identifiers (so the seed's ``From Date``/``Avg_WS``
become ``from_date``/``avg_ws``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.air_quality.schema import MEASURE_COLUMNS, POLLUTANT_COLUMNS

# --- national standards and the CPCB National AQI ------------------------------------

PM25_24H_LIMIT = 60.0  # µg/m³, NAAQS 2009, 24-hour average
PM10_24H_LIMIT = 100.0  # µg/m³, NAAQS 2009, 24-hour average
# CPCB's AQI method needs 16 hourly values for a 24-hour average; we apply the same
# rule when judging a day against the 24-hour standards.
MIN_HOURS_24H = 16
# CPCB gives no coverage rule for the 8-hour averages of CO and O3; we require 6 of
# the 8 hours (75 %, the usual rule elsewhere) so one lone hour cannot make a day.
MIN_HOURS_8H = 6

# Upper concentration of Good, Satisfactory, Moderate, Poor, Very Poor (CPCB National
# AQI, 2014; µg/m³, CO in mg/m³). PM, NO2, SO2, NH3 are 24-hour averages; CO and O3
# the day's maximum 8-hour average. CPCB's O3 Very Poor range (209-748) is defined on
# 1-hour values; we apply it to the 8-hour value, as CPCB's daily bulletin tools do.
AQI_BREAKPOINTS: dict[str, list[float]] = {
    "pm10": [50, 100, 250, 350, 430],
    "pm25": [30, 60, 90, 120, 250],
    "no2": [40, 80, 180, 280, 400],
    "ozone": [50, 100, 168, 208, 748],
    "co": [1.0, 2.0, 10, 17, 34],
    "so2": [40, 80, 380, 800, 1600],
    "nh3": [200, 400, 800, 1200, 1800],
}
AQI_INDEX_BOUNDS = [0, 50, 100, 200, 300, 400]
AQI_CATEGORIES = ["Good", "Satisfactory", "Moderate", "Poor", "Very Poor", "Severe"]
# Order of the pollutants when two share the highest sub-index (responsible pollutant).
AQI_POLLUTANTS = ["pm25", "pm10", "no2", "ozone", "co", "so2", "nh3"]
AQI_LABELS = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "ozone": "O3", "co": "CO", "so2": "SO2", "nh3": "NH3"}

MAIN_POLLUTANTS = ["pm25", "pm10", "no2", "so2", "co", "ozone"]

WIND_SECTORS = ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"]
# Lower edges (m/s) of the speed bands of the wind rose.
WIND_SPEED_BANDS = [(0.0, "0-1"), (1.0, "1-2"), (2.0, "2-4"), (4.0, "4-6"), (6.0, "6+")]


def _day() -> Column:
    return F.to_date("from_ts")


def _month() -> Column:
    return F.date_format("from_ts", "yyyy-MM")


def _hour_index() -> Column:
    # Hours since 1970-01-01 of the wall-clock time: lets a window range over hours
    # without any time-zone conversion of the zone-less timestamps.
    return F.unix_date(F.to_date("from_ts")).cast("long") * 24 + F.hour("from_ts")


# --- 1 ---------------------------------------------------------------------------------

def avg_ws_df(df: DataFrame) -> DataFrame:
    """Average wind speed over all stations per hour: the seed's (From Date, Avg_WS)."""
    return df.groupBy(F.col("from_ts").alias("from_date")).agg(F.avg("ws").alias("avg_ws"))


# --- 2 ---------------------------------------------------------------------------------

def daily_pm_df(df: DataFrame) -> DataFrame:
    """Daily mean PM2.5 and PM10 per station, with the number of hours behind each."""
    return df.groupBy("station", _day().alias("day")).agg(
        F.avg("pm25").alias("pm25_mean"),
        F.avg("pm10").alias("pm10_mean"),
        F.count("pm25").alias("pm25_hours"),
        F.count("pm10").alias("pm10_hours"),
    )


# --- 3 ---------------------------------------------------------------------------------

def exceedance_df(df: DataFrame) -> DataFrame:
    """Hours and days above the 24-hour PM standards per station.

    Hours: hourly values above the limit (an indicator; the standard is on 24-h means).
    Days: days with at least MIN_HOURS_24H values whose mean is above the limit, out of
    ``*_days_assessed`` such days.
    """
    hours = df.groupBy("station").agg(
        F.count(F.when(F.col("pm25") > PM25_24H_LIMIT, 1)).alias("pm25_hours_above"),
        F.count(F.when(F.col("pm10") > PM10_24H_LIMIT, 1)).alias("pm10_hours_above"),
    )
    daily = daily_pm_df(df)
    pm25_ok = F.col("pm25_hours") >= MIN_HOURS_24H
    pm10_ok = F.col("pm10_hours") >= MIN_HOURS_24H
    days = daily.groupBy("station").agg(
        F.count(F.when(pm25_ok & (F.col("pm25_mean") > PM25_24H_LIMIT), 1)).alias("pm25_days_above"),
        F.count(F.when(pm10_ok & (F.col("pm10_mean") > PM10_24H_LIMIT), 1)).alias("pm10_days_above"),
        F.count(F.when(pm25_ok, 1)).alias("pm25_days_assessed"),
        F.count(F.when(pm10_ok, 1)).alias("pm10_days_assessed"),
    )
    return hours.join(days, "station")


# --- 4 ---------------------------------------------------------------------------------

def monthly_stats_df(df: DataFrame) -> DataFrame:
    """Long format: station, month, pollutant, min/max/mean and the number of hourly values
    (pollutants without any value in a station-month have no row)."""
    # Aggregated wide, then unpivoted: unpivoting the hourly rows first made 14 rows of each
    # (140 M at 10 M rows) for the aggregation to go through; this way only the results are.
    stats = ("min_value", "max_value", "mean_value", "n_values")
    wide = df.groupBy("station", _month().alias("month")).agg(
        *[F.struct(F.min(p).alias(stats[0]), F.max(p).alias(stats[1]), F.avg(p).alias(stats[2]),
                   F.count(p).alias(stats[3])).alias(p)
          for p in POLLUTANT_COLUMNS]
    )
    long = wide.unpivot(["station", "month"], POLLUTANT_COLUMNS, "pollutant", "stats")
    return long.where(F.col("stats.n_values") > 0).select("station", "month", "pollutant", *[f"stats.{c}" for c in stats])


# --- 5 ---------------------------------------------------------------------------------

def sub_index(pollutant: str, concentration: Column) -> Column:
    """CPCB sub-index: linear between breakpoints, I = I_lo + (I_hi-I_lo)(C-B_lo)/(B_hi-B_lo).

    The published table has gaps between integer ranges (PM2.5 0-30, 31-60, ...); we
    use contiguous ranges (30, 60] so that 30.5 has an index. CPCB gives no upper
    concentration for Severe, so the Very Poor slope is extended and the index capped
    at 500. Negative averages (sensor offsets) count as 0.
    """
    bounds = AQI_BREAKPOINTS[pollutant]
    c = F.greatest(concentration, F.lit(0.0))
    lows = [0.0, *bounds[:-1]]
    expr = None
    for lo, hi, i_lo, i_hi in zip(lows, bounds, AQI_INDEX_BOUNDS, AQI_INDEX_BOUNDS[1:]):
        piece = F.lit(float(i_lo)) + F.lit((i_hi - i_lo) / (hi - lo)) * (c - F.lit(float(lo)))
        expr = F.when(c <= hi, piece) if expr is None else expr.when(c <= hi, piece)
    last_slope = 100.0 / (bounds[-1] - bounds[-2])
    severe = F.least(F.lit(500.0), F.lit(400.0) + F.lit(last_slope) * (c - F.lit(float(bounds[-1]))))
    return F.when(concentration.isNull(), F.lit(None).cast("double")).otherwise(expr.otherwise(severe))


def aqi_category(aqi: Column) -> Column:
    expr = F.when(aqi.isNull(), F.lit(None).cast("string"))
    for upper, name in zip(AQI_INDEX_BOUNDS[1:], AQI_CATEGORIES):
        expr = expr.when(aqi <= upper, name)
    return expr.otherwise(AQI_CATEGORIES[-1])


# Pollutants whose sub-index CPCB computes from the 24-hour average: a daily file's mean is
# that value. CO and O3 need the day's maximum 8-hour average, which a daily mean is not, so a
# day of a daily file has at most these five sub-indices.
AQI_24H_POLLUTANTS = ["pm25", "pm10", "no2", "so2", "nh3"]


def daily_aqi_df(df: DataFrame, daily: DataFrame | None = None) -> DataFrame:
    """Daily National AQI per station (calendar day), its category and responsible pollutant.

    A day gets an AQI only when at least three sub-indices exist and one of them is
    PM2.5 or PM10 (CPCB's rule); other days are not in the output. ``basis`` says what
    it was computed from: ``hourly`` (``df``, the hourly dataset: 24-hour averages of at
    least MIN_HOURS_24H hours, 8-hour maxima of CO and O3) or ``daily`` (``daily``, the
    daily dataset, DAILY_SCHEMA: its means taken as the 24-hour averages, no CO and O3,
    see AQI_24H_POLLUTANTS). A station-day in both gets the hourly one, the fuller method.
    """
    from_hourly = _daily_aqi_from_hourly(df)
    if daily is None:
        return from_hourly
    from_daily = _aqi_columns(
        daily.select(
            "station", "day",
            *[F.col(p).alias(f"{p}_24h") for p in AQI_24H_POLLUTANTS],
            F.lit(None).cast("double").alias("co_8h_max"),
            F.lit(None).cast("double").alias("ozone_8h_max"),
        ),
        "daily",
    ).join(from_hourly.select("station", "day"), ["station", "day"], "left_anti")
    return from_hourly.unionByName(from_daily)


def _daily_aqi_from_hourly(df: DataFrame) -> DataFrame:
    hourly = df.select(
        "station", _day().alias("day"), _hour_index().alias("hour_index"), *AQI_POLLUTANTS
    )
    avg24 = AQI_24H_POLLUTANTS
    daily24 = hourly.groupBy("station", "day").agg(
        *[F.when(F.count(p) >= MIN_HOURS_24H, F.avg(p)).alias(f"{p}_24h") for p in avg24]
    )
    # 8-hour averages ending at each hour (the window reaches into the previous day).
    last8 = Window.partitionBy("station").orderBy("hour_index").rangeBetween(-7, 0)
    rolling = hourly.select(
        "station",
        "day",
        *[F.when(F.count(p).over(last8) >= MIN_HOURS_8H, F.avg(p).over(last8)).alias(f"{p}_8h") for p in ("co", "ozone")],
    )
    daily8 = rolling.groupBy("station", "day").agg(
        F.max("co_8h").alias("co_8h_max"), F.max("ozone_8h").alias("ozone_8h_max")
    )
    return _aqi_columns(daily24.join(daily8, ["station", "day"]), "hourly")


def _aqi_columns(daily: DataFrame, basis: str) -> DataFrame:
    """The AQI rows of days given as (station, day, <p>_24h for AQI_24H_POLLUTANTS, co_8h_max, ozone_8h_max)."""
    avg24 = AQI_24H_POLLUTANTS
    concentration = {p: F.col(f"{p}_24h") for p in avg24}
    concentration.update({"co": F.col("co_8h_max"), "ozone": F.col("ozone_8h_max")})
    daily = daily.select("*", *[sub_index(p, concentration[p]).alias(f"si_{p}") for p in AQI_POLLUTANTS])
    si = [F.col(f"si_{p}") for p in AQI_POLLUTANTS]
    n_available = sum((s.isNotNull().cast("int") for s in si), F.lit(0))
    valid = (n_available >= 3) & (F.col("si_pm25").isNotNull() | F.col("si_pm10").isNotNull())
    top = F.greatest(*si)
    responsible = F.coalesce(*[F.when(F.col(f"si_{p}") == top, F.lit(AQI_LABELS[p])) for p in AQI_POLLUTANTS])
    aqi = F.round(top, 0).cast("int")
    return daily.where(valid).select(
        "station",
        "day",
        aqi.alias("aqi"),
        aqi_category(aqi).alias("category"),
        responsible.alias("responsible_pollutant"),
        n_available.alias("n_pollutants"),
        *[f"{p}_24h" for p in avg24],
        "co_8h_max",
        "ozone_8h_max",
        *[f"si_{p}" for p in AQI_POLLUTANTS],
        F.lit(basis).alias("basis"),
    )


# --- 6 ---------------------------------------------------------------------------------

def top_polluted_days_df(df: DataFrame, n: int = 10) -> DataFrame:
    """The ``n`` days with the highest daily mean PM2.5 per station; ties go to the earlier day."""
    order = Window.partitionBy("station").orderBy(F.col("pm25_mean").desc(), F.col("day").asc())
    daily = daily_pm_df(df).where(F.col("pm25_mean").isNotNull())
    return (
        daily.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= n)
        .select("station", "rank", "day", "pm25_mean", "pm25_hours")
    )


# --- 7 ---------------------------------------------------------------------------------

def diurnal_profile_df(df: DataFrame) -> DataFrame:
    """Mean of the main pollutants per hour of day (0-23) and station."""
    return df.groupBy("station", F.hour("from_ts").alias("hour_of_day")).agg(
        *[F.avg(p).alias(f"{p}_mean") for p in MAIN_POLLUTANTS]
    )


# --- 8 ---------------------------------------------------------------------------------

def completeness_df(df: DataFrame) -> DataFrame:
    """Share of the month's hours with a value, per measured column, station and month.

    The denominator is every hour of the calendar month (24 x days), so a station
    that started mid-month or a column it never reports shows as incomplete.
    """
    counts = df.groupBy("station", _month().alias("month")).agg(
        *[F.count(c).alias(c) for c in MEASURE_COLUMNS]
    )
    long = counts.unpivot(["station", "month"], MEASURE_COLUMNS, "column_name", "n_values")
    hours = F.dayofmonth(F.last_day(F.to_date(F.concat(F.col("month"), F.lit("-01"))))) * 24
    return long.select(
        "station",
        "month",
        "column_name",
        "n_values",
        hours.cast("int").alias("hours_in_month"),
        (F.col("n_values") / hours).alias("completeness"),
    )


# --- 9 ---------------------------------------------------------------------------------

def wind_rose_df(df: DataFrame) -> DataFrame:
    """Share of hours per direction sector (16 x 22.5°, N centred on 0°) and speed band.

    Only hours with both speed and a direction within 0-360° count; shares of a
    station add up to 1.
    """
    valid = df.where(
        F.col("ws").isNotNull() & (F.col("ws") >= 0) & F.col("wd").between(0, 360)
    )
    sector = F.floor(F.pmod(F.col("wd") + 11.25, F.lit(360.0)) / 22.5).cast("int")
    band = None
    for lower, label in reversed(WIND_SPEED_BANDS):
        band = F.when(F.col("ws") >= lower, label) if band is None else band.when(F.col("ws") >= lower, label)
    # reversed() put the highest band first, so the first matching lower edge wins.
    sector_names = F.array(*[F.lit(s) for s in WIND_SECTORS])
    counts = valid.groupBy("station", sector.alias("sector_index"), band.alias("speed_band")).agg(
        F.count(F.lit(1)).alias("hours")
    )
    per_station = Window.partitionBy("station")
    return counts.select(
        "station",
        "sector_index",
        F.element_at(sector_names, F.col("sector_index") + 1).alias("sector"),
        "speed_band",
        "hours",
        (F.col("hours") / F.sum("hours").over(per_station)).alias("share"),
    )


# --- 10 --------------------------------------------------------------------------------

def temp_ozone_corr_df(df: DataFrame) -> DataFrame:
    """Pearson correlation of air temperature (AT) and ozone per station and month.

    Only hours with both values count; fewer than 3 pairs give no coefficient.
    """
    both = F.col("at").isNotNull() & F.col("ozone").isNotNull()
    paired = df.where(both)
    return paired.groupBy("station", _month().alias("month")).agg(
        F.count(F.lit(1)).alias("n_pairs"),
        F.when(F.count(F.lit(1)) >= 3, F.corr("at", "ozone")).alias("r_at_ozone"),
    )


# --- 11 --------------------------------------------------------------------------------

def aqi_vs_source_df(df: DataFrame, daily: DataFrame, n: int = 10) -> DataFrame:
    """The platform's daily AQI (:func:`daily_aqi_df`) against the AQI the daily file states.

    Compared on the station-days that have both (the source's AQI rounded to an integer, as
    CPCB publishes it). Per station, the ``n`` days that differ most (largest absolute
    difference, ties to the earlier day), each with the station's totals: days compared,
    share of days with the same AQI, share with the same category, mean absolute difference.
    The hourly files' AQI is not compared: it is a rolling index per hour, not a day's.
    """
    source = daily.where(F.col("source_aqi").isNotNull()).select(
        "station", "day",
        F.round("source_aqi", 0).cast("int").alias("source_aqi"),
        F.col("source_aqi_bucket").alias("source_category"),
    )
    # The platform's AQI is computed only where the source states one: from the hourly rows of those
    # station-days and of the days before them (a day's first 8-hour averages reach into the day
    # before). Without daily files (CPCB exports only) nothing is computed at all.
    needed_days = source.select("station", F.explode(F.array("day", F.date_sub("day", 1))).alias("day")).distinct()
    # Broadcast: the list is small next to the hourly rows, and an empty one then ends the job
    # before any hourly row is read (with a shuffle join the scan would run anyway).
    hourly = df.join(F.broadcast(needed_days),
                     (df["station"] == needed_days["station"]) & (_day() == needed_days["day"]), "left_semi")
    both = daily_aqi_df(hourly, daily).join(source, ["station", "day"]).select(
        "station", "day", "basis", "aqi", "source_aqi", (F.col("aqi") - F.col("source_aqi")).alias("difference"),
        "category", "source_category",
    )
    station = Window.partitionBy("station")
    worst_first = Window.partitionBy("station").orderBy(F.abs("difference").desc(), F.col("day").asc())
    return (
        both.select(
            "*",
            F.row_number().over(worst_first).alias("rank_no"),
            F.count(F.lit(1)).over(station).alias("days_compared"),
            F.avg((F.col("difference") == 0).cast("double")).over(station).alias("agreement_share"),
            F.avg((F.col("category") == F.col("source_category")).cast("double")).over(station)
            .alias("category_agreement_share"),
            F.avg(F.abs("difference")).over(station).alias("mean_abs_difference"),
        )
        .where(F.col("rank_no") <= n)
        .select(
            "station", "rank_no", "day", "basis", "aqi", "source_aqi", "difference", "category", "source_category",
            "days_compared", "agreement_share", "category_agreement_share", "mean_abs_difference",
        )
    )


# --- registry --------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[..., DataFrame]
    table: str
    keys: tuple[str, ...]
    # func(hourly, daily) rather than func(hourly): the job also reads the daily dataset.
    # The others need hourly values and leave the daily dataset out (run_jobs logs it).
    reads_daily: bool = False
    # Statements run before the table is written: columns added since the table was first
    # created by an earlier version (CREATE TABLE IF NOT EXISTS leaves an existing one as it is).
    migrations: tuple[str, ...] = ()


JOBS: dict[str, Job] = {
    job.name: job
    for job in [
        Job("avg_ws_df", avg_ws_df, "aq_avg_ws", ("from_date",)),
        Job("daily_pm_df", daily_pm_df, "aq_daily_pm", ("station", "day")),
        Job("exceedance_df", exceedance_df, "aq_exceedance", ("station",)),
        Job("monthly_stats_df", monthly_stats_df, "aq_monthly_stats", ("station", "month", "pollutant")),
        Job("daily_aqi_df", daily_aqi_df, "aq_daily_aqi", ("station", "day"), reads_daily=True,
            migrations=("ALTER TABLE aq_daily_aqi ADD COLUMN IF NOT EXISTS basis VARCHAR(255) NULL",)),
        Job("top_polluted_days_df", top_polluted_days_df, "aq_top_polluted_days", ("station", "rank")),
        Job("diurnal_profile_df", diurnal_profile_df, "aq_diurnal_profile", ("station", "hour_of_day")),
        Job("completeness_df", completeness_df, "aq_completeness", ("station", "month", "column_name")),
        Job("wind_rose_df", wind_rose_df, "aq_wind_rose", ("station", "sector_index", "speed_band")),
        Job("temp_ozone_corr_df", temp_ozone_corr_df, "aq_temp_ozone_corr", ("station", "month")),
        Job("aqi_vs_source_df", aqi_vs_source_df, "aq_aqi_vs_source", ("station", "rank_no"), reads_daily=True),
    ]
}
