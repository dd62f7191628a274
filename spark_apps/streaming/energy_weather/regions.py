"""Which weather city each energy region gets its weather from, and the time range of weather a
reading is paired with: one declaration for the energy producer (include/producers/energy.py, whose
temperature term follows that city's observations inside the range) and for the join
(spark_apps/streaming/energy_weather/job.py, which maps a weather city to its regions and joins
within the range). No Spark import here.

A mapping is written ``region=city_id,region=city_id`` (``DP_ENERGY_REGION_CITIES``, the job's
``--region-cities``); several regions may share a city, a region has exactly one. City ids are
OpenWeatherMap's, the ones the weather producer polls (``DP_WEATHER_CITY_IDS``) or replays
(the recorded responses are Dublin CA's, 5344157).
"""
from __future__ import annotations

# The weather producer's default cities (include/producers/weather.py DEFAULT_CITY_IDS), one region each.
DEFAULT_REGION_CITIES: dict[str, int] = {
    "us-ca-dublin": 5344157,
    "gb-london": 2643743,
    "fr-paris": 2988507,
    "us-ny-new-york": 5128581,
    "jp-tokyo": 1850147,
    "in-bengaluru": 1277333,
}

# The join's default range: weather within [reading - before, reading + after] (Spark intervals).
DEFAULT_WEATHER_BEFORE = "60 minutes"
DEFAULT_WEATHER_AFTER = "10 minutes"
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(text: str) -> int:
    """``"60 minutes"`` -> 3600: the join's range for the producer, which has no Spark to parse
    Spark's interval strings (only the ``N unit`` form the settings use is accepted)."""
    number, _, unit = text.strip().partition(" ")
    seconds = _UNIT_SECONDS.get(unit.strip().lower().removesuffix("s"))
    if seconds is None or not number.isdigit():
        raise ValueError(f"{text!r} is not an interval like '60 minutes'")
    return int(number) * seconds


def parse_region_cities(text: str | None) -> dict[str, int]:
    """``"a=1,b=2"`` -> ``{"a": 1, "b": 2}``; empty or None: :data:`DEFAULT_REGION_CITIES`."""
    if not text or not text.strip():
        return dict(DEFAULT_REGION_CITIES)
    mapping: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        region, sep, city = item.partition("=")
        region = region.strip()
        if not sep or not region or not city.strip().isdigit():
            raise ValueError(f"region mapping item {item!r} is not region=city_id")
        if region in mapping:
            raise ValueError(f"region {region!r} mapped twice")
        mapping[region] = int(city)
    return mapping


def format_region_cities(mapping: dict[str, int]) -> str:
    return ",".join(f"{region}={city}" for region, city in mapping.items())


def regions_of_cities(mapping: dict[str, int], city_ids) -> dict[str, int]:
    """The part of ``mapping`` whose cities are among ``city_ids`` (the cities the weather feed has)."""
    wanted = {int(c) for c in city_ids}
    return {region: city for region, city in mapping.items() if city in wanted}
