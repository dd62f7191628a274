"""prepare/in_range/profiles on a handful of readings whose answers are worked out by hand."""
from __future__ import annotations

from datetime import date

from spark_apps.energy_analysis import profiles
from tests.spark_apps.energy_analysis.helpers import joined_frame, utc

MON, TUE, SUN = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 8)


def _row(reading_time, interval, kwh, temp=10.0):
    return ("hh-1", "north", reading_time, interval, kwh, 1, reading_time, temp, 60.0, reading_time.date())


ROWS = [
    _row(utc(2026, 11, 2, 10, 0), 60, 1.0),    # Mon 9:00-10:00: 1.0 kWh/h
    _row(utc(2026, 11, 2, 10, 0), 30, 0.6),    # Mon 9:30-10:00: 1.2 kWh/h, hour 9
    _row(utc(2026, 11, 3, 0, 0), 60, 0.5),     # Mon 23:00-24:00 (event date Tue): 0.5 kWh/h, Monday, hour 23
    _row(utc(2026, 11, 3, 12, 15), 15, 0.25),  # Tue 12:00-12:15: 1.0 kWh/h
    _row(utc(2026, 11, 8, 9, 0), 60, 2.0),     # Sun 8:00-9:00: 2.0 kWh/h
    _row(utc(2026, 11, 2, 11, 0), 60, None),   # no kWh
    _row(utc(2026, 11, 2, 11, 0), 60, 1.0, temp=None),  # no weather value
    _row(utc(2026, 11, 2, 11, 0), 0, 1.0),     # no interval
    _row(utc(2026, 11, 2, 11, 0), 60, -0.1),   # a negative reading
]


def test_prepare_keeps_valid_readings_as_kwh_per_hour_at_the_interval_start(spark):
    prepared = profiles.prepare(joined_frame(spark, ROWS))
    got = sorted((r.hour_of_day, r.day_of_week, round(r.kwh_per_hour, 9), r.event_date) for r in prepared.collect())
    assert got == [(8, 6, 2.0, SUN), (9, 0, 1.0, MON), (9, 0, 1.2, MON), (12, 1, 1.0, TUE), (23, 0, 0.5, TUE)]


def test_profiles_are_means_by_hour_and_by_weekday(spark):
    prepared = profiles.prepare(joined_frame(spark, ROWS))
    daily = [(p.key, round(p.mean_kwh_per_hour, 9), p.readings) for p in profiles.daily_profile(prepared)]
    assert daily == [(8, 2.0, 1), (9, 1.1, 2), (12, 1.0, 1), (23, 0.5, 1)]
    weekly = [(p.key, round(p.mean_kwh_per_hour, 9), p.readings) for p in profiles.weekly_profile(prepared)]
    assert weekly == [(0, 0.9, 3), (1, 1.0, 1), (6, 2.0, 1)]
    assert [profiles.DAY_NAMES[k] for k, _, _ in weekly] == ["Mon", "Tue", "Sun"]
    temp, kwh = profiles.means(prepared)
    assert (temp, round(kwh, 9)) == (10.0, round((2.0 + 1.0 + 1.2 + 1.0 + 0.5) / 5, 9))


def test_in_range_filters_event_dates_inclusively(spark):
    joined = joined_frame(spark, ROWS)
    assert profiles.in_range(joined, TUE, TUE).count() == 2
    assert profiles.in_range(joined, None, MON).count() == 6
    assert profiles.in_range(joined, SUN, None).count() == 1
    assert profiles.in_range(joined, None, None).count() == len(ROWS)


def test_scatter_sample_is_bounded_and_repeatable(spark):
    rows = [_row(utc(2026, 11, 2, 1 + i % 20, 0), 60, 1.0 + i / 1000, temp=float(i % 30)) for i in range(2000)]
    prepared = profiles.prepare(joined_frame(spark, rows))
    sample = profiles.scatter_sample(prepared, 2000, 200, seed=3)
    assert 150 <= len(sample) <= 200
    assert sample == profiles.scatter_sample(prepared, 2000, 200, seed=3)
    assert len(profiles.scatter_sample(prepared, 2000, 5000, seed=3)) == 2000  # small: every reading
