"""The energy producer: the model's true coefficients (what the module docstring says, checked by
exact differences and by a regression over generated readings), the nearest-observation rule it
shares with the join, the schedule (gaps, late readings, determinism by seed), broken records, and
a live run against the real broker that follows the weather it reads from ``weather-raw``."""
from __future__ import annotations

import json
import math
import random
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest

from include.producers import energy
from tests.spark_apps.streaming.weather.responses import response

MONDAY_19H = int(datetime(2026, 1, 5, 19, tzinfo=timezone.utc).timestamp())
SATURDAY_19H = MONDAY_19H + 5 * 86400


def test_true_coefficients_are_the_documented_ones():
    assert (energy.TEMP_SLOPE_KW_PER_C, energy.REFERENCE_C, energy.BASE_KW) == (-0.03, 15.0, 1.0)
    assert (energy.DAILY_AMPLITUDE, energy.PEAK_HOUR, energy.WEEKEND_FACTOR, energy.NOISE_KW) == (0.35, 19.0, 1.2, 0.05)
    household = "h000007"
    scale = energy.household_scale(household)
    assert 0.7 <= scale <= 1.3 and energy.household_scale(household) == scale
    # Temperature: -0.03 kW per degree, linear, the same at every hour and day.
    for at in (MONDAY_19H, MONDAY_19H + 7 * 3600, SATURDAY_19H):
        assert energy.power_kw(household, at, 5.0) - energy.power_kw(household, at, 25.0) == pytest.approx(0.6)
    # At the reference temperature only the cycles: the daily peak at 19:00 UTC, trough at 07:00,
    # the weekend 1.2 times a weekday.
    assert energy.power_kw(household, MONDAY_19H, 15.0) == pytest.approx(scale * 1.35)
    assert energy.power_kw(household, MONDAY_19H + 12 * 3600, 15.0) == pytest.approx(scale * 0.65)
    assert energy.power_kw(household, SATURDAY_19H, 15.0) == pytest.approx(scale * 1.35 * 1.2)
    # kWh of a 15-minute reading, without noise: a quarter of the power.
    rng = random.Random(0)
    assert energy.reading_kwh(household, MONDAY_19H, 15, 5.0, rng, noise_kw=0) == round(
        (scale * 1.35 + 0.3) * 0.25, 6)


def test_a_regression_on_generated_readings_finds_the_slope():
    """kWh of 15-minute readings regressed on temperature and the (known) cycle term: the slope is
    TEMP_SLOPE_KW_PER_C * 0.25 h = -0.0075 kWh/°C within 3 %, with the producer's noise."""
    rng = random.Random(11)
    start = MONDAY_19H - 19 * 3600
    observations = {1: [(start + k * 600, round(rng.uniform(-5, 30), 2)) for k in range(7 * 144)]}
    temperatures = energy.ObservedTemperatures(observations)
    report = energy.EnergyReport(produce=energy.ProduceReport(topic="t"))
    households = energy.households_of(40, {"r": 1})
    rows = []
    for item in energy.plan(households, start, 15, 7 * 96, rng, report):
        event = energy.make_event(item, 15, {"r": 1}, temperatures, rng, report, 0.0, energy.NOISE_KW)
        body = json.loads(event.value)
        temp = temperatures.temperature_at(1, item.reading_time_s)
        cycle = energy.power_kw(item.household, item.reading_time_s, energy.REFERENCE_C) * 0.25
        rows.append((body["kwh"], temp, cycle))
    kwh, temp, cycle = (np.array(c) for c in zip(*rows))
    coefficients, *_ = np.linalg.lstsq(np.column_stack([temp, cycle, np.ones_like(temp)]), kwh, rcond=None)
    assert coefficients[0] == pytest.approx(-0.0075, rel=0.03)
    assert coefficients[1] == pytest.approx(1.0, rel=0.02)


def test_nearest_observation_rule_is_the_joins():
    temps = energy.ObservedTemperatures({1: [(1000, 5.0), (1600, 6.0), (2200, 7.0)]}, before_s=3600, after_s=600)
    assert temps.temperature_at(1, 1550) == 6.0
    assert temps.temperature_at(1, 1900) == 6.0       # a tie (300 s each way): the earlier
    assert temps.temperature_at(1, 1000 - 600) == 5.0  # an observation 10 min after: inside
    assert temps.temperature_at(1, 1000 - 601) is None
    assert temps.temperature_at(1, 2200 + 3600) == 7.0 and temps.temperature_at(1, 2200 + 3601) is None
    assert temps.temperature_at(2, 1600) is None
    temps.add(1, 1600, 6.5)  # the same observation again replaces it
    assert temps.by_city[1] == [(1000, 5.0), (1600, 6.5), (2200, 7.0)]


def _plan(seed, **shares):
    report = energy.EnergyReport(produce=energy.ProduceReport(topic="t"))
    items = list(energy.plan(energy.households_of(50, {"a": 1, "b": 2}), 0, 15, 40, random.Random(seed), report,
                             **shares))
    return items, report


def test_schedule_gaps_late_readings_and_seed():
    items, report = _plan(5, gap_share=0.05, late_share=0.1, late_minutes=5)
    again, _ = _plan(5, gap_share=0.05, late_share=0.1, late_minutes=5)
    assert items == again and [i.household for i in items] == [i.household for i in again]
    assert len(items) + report.gaps == 50 * 40 and 50 < report.gaps < 150
    late = [i for i in items if i.late]
    assert 120 < len(late) < 280
    assert [i.send_at_s for i in items] == sorted(i.send_at_s for i in items)
    index = {h: n for n, (h, _) in enumerate(energy.households_of(50, {"a": 1, "b": 2}))}
    for item in items:
        on_time = item.reading_time_s + index[item.household] * 900 / 50
        assert item.send_at_s == pytest.approx(on_time + (300 if item.late else 0))
        assert item.reading_time_s % 900 == 0
    # Regions round-robin; no household reports twice for an interval.
    assert Counter(i.region for i in items).keys() == {"a", "b"}
    assert len({(i.household, i.reading_time_s) for i in items}) == len(items)


def test_broken_records_are_broken_as_named():
    body = {"household_id": "h1", "region": "a", "reading_time": "2026-01-05T10:00:00Z", "interval_minutes": 15,
            "kwh": 0.2}
    rng = random.Random(1)
    with pytest.raises(ValueError):
        json.loads(energy.broken_payload("invalid_json", body, rng))
    assert len(json.loads(energy.broken_payload("missing_field", body, rng))) == 4
    assert json.loads(energy.broken_payload("negative_kwh", body, rng))["kwh"] < 0
    assert json.loads(energy.broken_payload("unknown_region", body, rng))["region"] == "atlantis"
    wrong = json.loads(energy.broken_payload("wrong_type", body, rng))
    assert wrong != body and set(wrong) == set(body)


def test_live_run_follows_the_weather_it_reads_from_the_broker(kafka_broker):
    weather_topic = kafka_broker.create_topic(partitions=2)
    readings_topic = kafka_broker.create_topic(partitions=2)
    now = datetime.now(timezone.utc).timestamp()
    boundary = int(now // 60 * 60)
    # The city's observations: one 20 min before the boundary (4.5 °C) and one on it (11.25 °C).
    kafka_broker.produce(weather_topic, [
        (b"5344157", json.dumps(response(5344157, boundary - 1200, 4.5, 70, 2.0)).encode(), 0),
        (b"5344157", json.dumps(response(5344157, boundary, 11.25, 70, 2.0)).encode(), 1),
        (b"nonsense", b"{not json", 0)])
    report = energy.run(kafka_broker.bootstrap, readings_topic, households=4, interval_minutes=1,
                        region_cities={"us-ca-dublin": 5344157}, intervals=1, seed=1, gap_share=0.0,
                        late_share=0.0, noise_kw=0.0, weather_topic=weather_topic)
    assert report.produce.delivered == 4 and report.without_weather == 0
    records = kafka_broker.consume_all(readings_topic, partitions=2)
    assert sorted(r.key() for r in records) == [b"h000001", b"h000002", b"h000003", b"h000004"]
    for record in records:
        body = json.loads(record.value())
        assert body["reading_time"] == energy.iso(boundary) and body["region"] == "us-ca-dublin"
        expected = energy.power_kw(body["household_id"], boundary, 11.25) / 60
        assert body["kwh"] == round(expected, 6) and not math.isnan(body["kwh"])


def test_live_waits_survive_a_clock_that_moves_between_two_reads(kafka_broker):
    """The live loop compares the send time with the clock and then sleeps for the difference: the
    clock moves between the two reads, and a wait computed from a second read went negative
    (``ValueError: sleep length must be non-negative`` killed the bench's producer thread)."""
    readings_topic = kafka_broker.create_topic(partitions=2)
    boundary = int(datetime.now(timezone.utc).timestamp() // 60 * 60)
    ticks = iter(boundary + 0.3 * i for i in range(10**6))  # every read of the clock moves it 0.3 s

    def sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")  # what time.sleep says

    report = energy.run(kafka_broker.bootstrap, readings_topic, households=3, interval_minutes=1,
                        region_cities={"us-ca-dublin": 5344157}, intervals=2, seed=1, gap_share=0.0,
                        late_share=0.0, noise_kw=0.0,
                        temperatures=energy.ObservedTemperatures({5344157: [(boundary + 60, 10.0), (boundary + 120, 10.0)]}),
                        clock=lambda: next(ticks), sleep=sleep)
    assert report.produce.delivered == 6


def test_the_weather_range_is_the_one_given(kafka_broker):
    """The producer takes the join's range (the DAG passes it): an observation 20 minutes before
    a reading is outside [reading - 10 min, reading + 2 min] and inside [reading - 30 min, ...]."""
    weather_topic = kafka_broker.create_topic(partitions=1)
    kafka_broker.produce(weather_topic, [
        (b"5344157", json.dumps(response(5344157, MONDAY_19H - 1200, 4.5, 70, 2.0)).encode(), 0)])
    for before_s, without_weather in ((600, 2), (1800, 0)):
        readings_topic = kafka_broker.create_topic(partitions=1)
        report = energy.run(kafka_broker.bootstrap, readings_topic, households=2, interval_minutes=15,
                            region_cities={"us-ca-dublin": 5344157}, start_s=MONDAY_19H, intervals=1, seed=1,
                            gap_share=0.0, late_share=0.0, noise_kw=0.0, weather_topic=weather_topic,
                            weather_before_s=before_s, weather_after_s=120)
        assert (report.produce.delivered, report.without_weather) == (2, without_weather)
        temperature = 4.5 if without_weather == 0 else energy.REFERENCE_C
        for record in kafka_broker.consume_all(readings_topic, partitions=1):
            body = json.loads(record.value())
            assert body["kwh"] == round(energy.power_kw(body["household_id"], MONDAY_19H, temperature) / 4, 6)
