"""Which weather city each energy region gets its weather from: one declaration for the energy
producer (include/producers/energy.py, whose temperature term follows that city's observations)
and for the join (spark_apps/streaming/energy_weather/job.py, which maps a weather city to its
regions). No Spark import here.

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
