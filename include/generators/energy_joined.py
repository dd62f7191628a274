"""Generate rows of the energy x weather join's output (``energy/joined/``, the columns of
spark_apps/streaming/energy_weather/layout.py JOINED_COLUMNS) with a known truth, for the
analysis's tests and a demo without the streaming side:

    kwh_per_hour = base + slope * temperature_c + HOUR_EFFECT[hour] + weekend (Sat, Sun) + noise

where the hour is that of the start of the reading's interval (UTC) and ``kwh`` is
``kwh_per_hour * interval_minutes / 60``. Temperature has a daily cycle (coldest at 5:00, warmest
at 15:00), so it is correlated with the hour, as outdoor temperature is: a fit that models the hour
poorly gets the slope wrong. The hour effect has a morning and an evening peak (not a sinusoid).

Plain Python (no Spark): ``rows()`` yields tuples in JOINED_COLUMNS order; the caller writes them
(``spark.createDataFrame(rows, ddl(JOINED_COLUMNS)).write.partitionBy("event_date")``).
Deterministic for a given seed.
"""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

# Mean extra kWh per hour by hour of day (UTC): night trough, morning and evening peaks.
HOUR_EFFECT = (
    -0.30, -0.35, -0.38, -0.40, -0.38, -0.30, -0.05, 0.35, 0.45, 0.20, 0.05, 0.00,
    0.02, 0.00, -0.02, 0.00, 0.10, 0.35, 0.65, 0.75, 0.60, 0.35, 0.05, -0.15,
)
REGIONS = {"north": (5128581, 8.0), "south": (2643743, 14.0)}  # region -> (city id, mean temperature °C)


def temperature(region_mean: float, moment: datetime, day_offset: float, rng: random.Random) -> float:
    """Daily cycle of +-5 °C around the region's mean (minimum at 5:00 UTC), a per-day offset, noise."""
    hours = moment.hour + moment.minute / 60
    cycle = -5.0 * math.cos(2 * math.pi * (hours - 5) / 24)
    return round(region_mean + day_offset + cycle + rng.gauss(0, 1.0), 2)


def rows(start: date, days: int, households: int = 6, interval_minutes: int = 60, base: float = 1.6,
         slope: float = -0.04, weekend: float = 0.15, noise: float = 0.15, seed: int = 16) -> Iterator[tuple]:
    """Every household's readings of ``days`` days from ``start``, each joined to a weather
    observation of its region up to 10 minutes before the reading."""
    rng = random.Random(seed)
    names = sorted(REGIONS)
    steps = days * 24 * 60 // interval_minutes
    day_offsets = {(region, d): rng.gauss(0, 3.0) for region in names for d in range(days)}
    origin = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    for step in range(steps):
        interval_start = origin + timedelta(minutes=step * interval_minutes)
        reading_time = interval_start + timedelta(minutes=interval_minutes)
        day = (interval_start.date() - start).days
        for region in names:
            city_id, mean = REGIONS[region]
            weather_time = reading_time - timedelta(minutes=rng.randrange(0, 11))
            temp = temperature(mean, interval_start, day_offsets[(region, day)], rng)
            humidity = round(min(100.0, max(5.0, 70 - 1.5 * (temp - mean) + rng.gauss(0, 5))), 1)
            for h in range(households):
                if h % len(names) != names.index(region):
                    continue
                per_hour = (base + slope * temp + HOUR_EFFECT[interval_start.hour]
                            + (weekend if interval_start.weekday() >= 5 else 0.0) + rng.gauss(0, noise))
                kwh = round(max(0.0, per_hour) * interval_minutes / 60, 5)
                # Aware (UTC) datetimes: PySpark reads a naive one in the Python process's local zone.
                yield (f"hh-{h:04d}", region, reading_time, interval_minutes, kwh, city_id,
                       weather_time, temp, humidity, reading_time.date())
