"""Canonical names and types of the air-quality data (CPCB station exports, Kaggle's files).

CPCB's CCR portal exports one file per station with columns such as
``From Date, To Date, PM2.5, PM10, ...``; the exact set and order depends on the
station and on what the user ticked, and some exports carry units in the header
(``PM2.5 (ug/m3)``). Everything downstream uses the canonical snake_case names
defined here, so the header of every file is mapped onto them first.
"""
from __future__ import annotations

import re

from pyspark.sql import types as T

# Measured quantities in CPCB export order: canonical name -> header label in the export.
MEASURES: dict[str, str] = {
    "pm25": "PM2.5",
    "pm10": "PM10",
    "no": "NO",
    "no2": "NO2",
    "nox": "NOx",
    "nh3": "NH3",
    "so2": "SO2",
    "co": "CO",
    "ozone": "Ozone",
    "benzene": "Benzene",
    "toluene": "Toluene",
    "xylene": "Xylene",
    "rh": "RH",
    "ws": "WS",
    "wd": "WD",
    "sr": "SR",
    "bp": "BP",
    "at": "AT",
    "rf": "RF",
    "tot_rf": "TOT-RF",
}
MEASURE_COLUMNS: list[str] = list(MEASURES)

# Pollutants (as opposed to meteorological parameters) for per-pollutant statistics.
POLLUTANT_COLUMNS: list[str] = [
    "pm25", "pm10", "no", "no2", "nox", "nh3", "so2", "co", "ozone", "benzene", "toluene", "xylene",
]

# Units CPCB uses for each measure; the generator writes them into "with units" headers.
UNITS: dict[str, str] = {
    "pm25": "ug/m3", "pm10": "ug/m3", "no": "ug/m3", "no2": "ug/m3", "nox": "ppb",
    "nh3": "ug/m3", "so2": "ug/m3", "co": "mg/m3", "ozone": "ug/m3", "benzene": "ug/m3",
    "toluene": "ug/m3", "xylene": "ug/m3", "rh": "%", "ws": "m/s", "wd": "deg",
    "sr": "W/mt2", "bp": "mmHg", "at": "degree C", "rf": "mm", "tot_rf": "mm",
}

TIME_COLUMNS: dict[str, str] = {"from_ts": "From Date", "to_ts": "To Date"}
LABEL_COLUMNS: dict[str, str] = {"station": "Station", "city": "City", "station_id": "StationId"}
# The index the source file states itself (Kaggle's "Air Quality Data in India" files), kept as
# it is so that the platform's own daily AQI can be compared with it (jobs.aqi_vs_source_df).
SOURCE_AQI_COLUMNS: dict[str, str] = {"source_aqi": "AQI", "source_aqi_bucket": "AQI_Bucket"}

# Header keys (lower case, only letters and digits) -> canonical name. Built from the
# export labels plus the spellings seen in other CPCB/OpenAQ dumps.
_ALIASES: dict[str, str] = {
    "fromdate": "from_ts", "fromdatetime": "from_ts", "from": "from_ts",
    "todate": "to_ts", "todatetime": "to_ts", "to": "to_ts",
    "o3": "ozone", "temp": "at", "temperature": "at", "totrf": "tot_rf", "totalrf": "tot_rf",
    "stationname": "station", "cityname": "city",
    # Kaggle "Air Quality Data in India (2015-2020)": Datetime in the hourly, Date in the daily files.
    "datetime": "from_ts", "date": "from_ts",
}


def _key(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


HEADER_KEYS: dict[str, str] = {
    **{_key(label): name for name, label in {**MEASURES, **TIME_COLUMNS, **LABEL_COLUMNS, **SOURCE_AQI_COLUMNS}.items()},
    **_ALIASES,
}

# A unit suffix: "(ug/m3)", "[µg/m³]" or "in ug/m3" at the end of a header cell.
_UNIT_SUFFIX = re.compile(r"\s*(\(.*\)|\[.*\]|\bin\s+\S+)\s*$", re.IGNORECASE)


def canonical_column(header_cell: str) -> str | None:
    """Canonical name for one header cell, or None for a column we do not use.

    Case, spaces, punctuation and a trailing unit are ignored:
    ``'PM2.5 (ug/m3)'``, ``' pm 2.5 '`` and ``'PM2.5'`` all give ``'pm25'``.
    """
    label = header_cell.strip().strip('"').strip()
    label = _UNIT_SUFFIX.sub("", label)
    return HEADER_KEYS.get(_key(label))


# The hourly Parquet dataset written by convert.py (layout: PARTITION_COLUMNS). Timestamps are TIMESTAMP_NTZ: CPCB gives
# local Indian wall-clock time without a zone, and NTZ keeps it as written whatever the
# session or Python time zone is (LTZ would shift it when collected to Python).
PARQUET_SCHEMA = T.StructType(
    [
        T.StructField("from_ts", T.TimestampNTZType(), False),
        T.StructField("to_ts", T.TimestampNTZType(), True),
        *[T.StructField(name, T.DoubleType(), True) for name in MEASURE_COLUMNS],
        T.StructField("city", T.StringType(), True),
        T.StructField("source_aqi", T.DoubleType(), True),
        T.StructField("source_aqi_bucket", T.StringType(), True),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("station", T.StringType(), False),
        T.StructField("month", T.StringType(), False),
    ]
)
# Curated layout: one folder per month (month=yyyy-MM), its rows sorted by station and time,
# so a month is a few files of tens of MB at most (not one small file per station and month),
# row-group and page statistics of `station` let a per-station read skip the other stations,
# and a month can be replaced alone.
PARTITION_COLUMNS = ["month"]
SORT_COLUMNS = ["station", "from_ts"]
# Parquet row groups of a month's file (parquet.block.size): small enough that a month holds
# several, each a range of stations, so a per-station read skips most of them. The writer
# counts its buffered size, not the compressed one: at 1 M generated rows (20 stations) a
# month's 660 KB file had 2 row groups of ~6,500 rows; not yet measured at other sizes.
ROW_GROUP_BYTES = 2 * 1024 * 1024

# The daily dataset (Kaggle's station_day.csv / city_day.csv): one row per station and day
# with the file's daily means, written beside the hourly one by convert.py.
DAILY_SCHEMA = T.StructType(
    [
        T.StructField("station", T.StringType(), False),
        T.StructField("day", T.DateType(), False),
        T.StructField("city", T.StringType(), True),
        *[T.StructField(name, T.DoubleType(), True) for name in POLLUTANT_COLUMNS],
        T.StructField("source_aqi", T.DoubleType(), True),
        T.StructField("source_aqi_bucket", T.StringType(), True),
        T.StructField("source_file", T.StringType(), False),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("line", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
    ]
)

# Tokens CPCB and spreadsheet tools use for "no value"; compared case-insensitively
# after trimming.
MISSING_TOKENS = ["", "none", "na", "n/a", "nan", "-", "null"]
