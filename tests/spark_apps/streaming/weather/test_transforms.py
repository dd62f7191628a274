"""The weather job's DataFrame functions on the recorded real responses and on hand-made bad
ones, with hand-computed answers (validation reasons, dead letters, dedup, hourly math)."""
from __future__ import annotations

import json
from base64 import b64decode
from datetime import date, datetime, timezone

import pytest

from spark_apps.streaming.weather import transforms
from tests.spark_apps.streaming.weather.responses import (
    DUBLIN_CA,
    H0,
    HOURLY_EXPECTED,
    HOURLY_INPUT,
    kafka_frame,
    recorded_lines,
    response,
    template,
)

pytestmark = pytest.mark.spark


def reasons(spark, values) -> list[str | None]:
    rows = transforms.checked(kafka_frame(spark, values)).orderBy("offset").collect()
    return [row.reason for row in rows]


def test_every_recorded_response_is_valid_and_parsed_as_recorded(spark):
    lines = recorded_lines()
    assert len(lines) == 300
    checked = transforms.checked(kafka_frame(spark, lines, ingest_s=1767500000)).cache()
    assert checked.where("reason IS NOT NULL").count() == 0
    rows = {r.source_offset: r for r in transforms.observations(checked).collect()}
    assert len(rows) == 300
    for offset in (0, 150, 299):
        body = json.loads(lines[offset])
        row = rows[offset]
        assert (row.city_id, row.observed_at_ms, row.city_name, row.country) == (DUBLIN_CA, body["dt"] * 1000, "Dublin",
                                                                                  "US")
        assert row.day == datetime.fromtimestamp(body["dt"], timezone.utc).date()
        assert (row.temp, row.feels_like, row.temp_min, row.temp_max) == tuple(
            body["main"][k] for k in ("temp", "feels_like", "temp_min", "temp_max"))
        assert (row.pressure, row.humidity, row.sea_level, row.grnd_level) == tuple(
            body["main"][k] for k in ("pressure", "humidity", "sea_level", "grnd_level"))
        assert (row.wind_speed, row.wind_deg, row.wind_gust) == (body["wind"]["speed"], body["wind"]["deg"],
                                                                  body["wind"].get("gust"))
        assert (row.condition_id, row.condition, row.icon) == (body["weather"][0]["id"], body["weather"][0]["main"],
                                                               body["weather"][0]["icon"])
        assert (row.visibility, row.clouds, row.timezone_s) == (body["visibility"], body["clouds"]["all"], -28800)
        assert row.sunrise_ms == body["sys"]["sunrise"] * 1000
        assert row.rain_1h == body.get("rain", {}).get("1h")
    # 29 recorded responses report rain, 77 a gust: optional fields come through
    assert sum(r.rain_1h is not None for r in rows.values()) == 29
    assert sum(r.wind_gust is not None for r in rows.values()) == 77


def _without(path: str) -> dict:
    body = template()
    *parents, leaf = path.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    del target[leaf]
    return body


def _with(path: str, value) -> dict:
    body = template()
    *parents, leaf = path.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    return body


BAD = [
    (None, "empty_value"),
    (b"", "empty_value"),
    (b'{"coord": {"lon": -121.9', "invalid_json"),
    (b"\xff\xfe not utf-8", "invalid_json"),
    (b'{"id": 1, "id": 2}', "invalid_json"),  # duplicate keys
    (b"[1, 2, 3]", "not_a_json_object"),
    (b'"a string"', "not_a_json_object"),
    (b'{"cod": "404", "message": "city not found"}', "api_error:404"),
    (b'{"cod": 401, "message": "Invalid API key"}', "api_error:401"),
    (_without("main"), "missing_field:main"),
    (_without("main.temp"), "missing_field:main.temp"),
    (_with("main.temp", None), "missing_field:main.temp"),  # JSON null counts as missing
    (_without("dt"), "missing_field:dt"),
    (_without("weather"), "missing_field:weather"),
    (_with("wind", {"deg": 40}), "missing_field:wind.speed"),
    (_without("visibility"), "missing_field:visibility"),
    (_with("main.temp", "5.3"), "wrong_type:main.temp"),
    (_with("main.humidity", 90.5), "wrong_type:main.humidity"),
    (_with("dt", "1765278379"), "wrong_type:dt"),
    (_with("name", 5), "wrong_type:name"),
    (_with("weather", []), "wrong_type:weather"),
    (_with("weather", [{"id": 800, "main": "Clear", "description": "clear sky"}]), "wrong_type:weather"),
    (_with("weather", {"id": 800}), "wrong_type:weather"),
    (_with("rain", {"1h": "heavy"}), "wrong_type:rain.1h"),
    (_with("rain", 0.5), "wrong_type:rain"),
    (_with("main.temp", 278.47), "out_of_range:main.temp"),  # Kelvin: units=metric missing
    (_with("main.humidity", 101), "out_of_range:main.humidity"),
    (_with("wind.deg", 361), "out_of_range:wind.deg"),
    (_with("coord", {"lon": 200.0, "lat": 37.7}), "out_of_range:coord.lon"),
    (_with("main.temp_min", 30.0), "out_of_range:main.temp_min>main.temp_max"),
    (_with("dt", H0 + 7200 + 3601), "dt_in_future"),
]


def test_bad_responses_get_their_reason(spark):
    values = [value for value, _ in BAD]
    assert reasons(spark, values) == [reason for _, reason in BAD]


def test_several_failures_of_one_kind_are_listed_together_and_extra_fields_are_fine(spark):
    both = _without("main.temp")
    del both["dt"]
    extra = template()
    extra["new_field"] = {"from": "a newer API"}
    extra["main"]["temp_kf"] = 0.5
    assert reasons(spark, [both, extra, response(1, H0, 5.0, 50, 1.0)]) == ["missing_field:main.temp,dt", None, None]


def test_dead_letters_carry_reason_coordinates_and_raw_bytes(spark):
    frame = kafka_frame(spark, [template(), b'{"cod": "404"}', b"\xff", None], topic="weather-raw", partition=3)
    letters = transforms.dead_letters(transforms.checked(frame)).collect()
    assert sorted(r.key.decode() for r in letters) == ["weather-raw:3:1", "weather-raw:3:2", "weather-raw:3:3"]
    by_offset = {body["source_offset"]: body for body in (json.loads(r.value) for r in letters)}
    assert by_offset[1] == {"reason": "api_error:404", "source_topic": "weather-raw", "source_partition": 3,
                            "source_offset": 1, "raw_value_text": '{"cod": "404"}',
                            "raw_value_base64": "eyJjb2QiOiAiNDA0In0="}
    assert by_offset[2]["reason"] == "invalid_json" and "raw_value_text" not in by_offset[2]  # not UTF-8
    assert b64decode(by_offset[2]["raw_value_base64"]) == b"\xff"
    assert by_offset[3] == {"reason": "empty_value", "source_topic": "weather-raw", "source_partition": 3,
                            "source_offset": 3}


def test_batch_dedup_keeps_one_row_per_city_and_dt_the_last_read(spark):
    first = response(7, H0 + 60, 1.0, 10, 1.0)
    repeated = response(7, H0 + 60, 1.0, 10, 1.0)
    changed = response(7, H0 + 660, 2.0, 20, 2.0)
    other_city_same_dt = response(8, H0 + 60, 3.0, 30, 3.0)
    rows = transforms.observations(transforms.checked(kafka_frame(spark, [first, repeated, changed,
                                                                          other_city_same_dt])))
    kept = sorted((r.city_id, r.observed_at_ms, r.source_offset) for r in transforms.deduplicate_batch(rows).collect())
    assert kept == [(7, (H0 + 60) * 1000, 1), (7, (H0 + 660) * 1000, 2), (8, (H0 + 60) * 1000, 3)]


def test_hourly_aggregates_by_hand(spark):
    values = [*HOURLY_INPUT, b"not json"]  # the bad record counts nowhere
    observations = transforms.observations(transforms.checked(kafka_frame(spark, values)))
    rows = transforms.hourly_aggregates(observations).collect()
    got = {}
    for r in rows:
        got[(r.city_id, r.hour_ms // 1000)] = (
            r.observations, r.temp_min, r.temp_max, round(r.temp_mean, 9), r.humidity_min, r.humidity_max,
            r.humidity_mean, r.wind_speed_mean, r.wind_speed_max, r.wind_gust_max, r.rain_1h_sum, r.rain_1h_max,
            r.snow_1h_sum)
        assert r.month == "2025-12" and r.hour == datetime.fromtimestamp(r.hour_ms // 1000)
    expected = {k: (*v[:3], round(v[3], 9), *v[4:]) for k, v in HOURLY_EXPECTED.items()}
    assert got == expected
    assert {r.city_id: r.city_name for r in rows} == {100: "city100", 200: "Other"}


def test_cassandra_and_mysql_values_follow_the_tables_columns(spark):
    from spark_apps.streaming.weather import tables

    observations = transforms.observations(transforms.checked(kafka_frame(spark, HOURLY_INPUT[:1])))
    values = transforms.cassandra_observation_values(observations)
    renamed = {"observed_at_ms": "observed_at", "sunrise_ms": "sunrise", "sunset_ms": "sunset",
               "ingested_at_ms": "ingested_at"}
    assert [renamed.get(c, c) for c in values.columns] == [name for name, _ in tables.OBSERVATION_COLUMNS]
    row = values.collect()[0]
    assert (row.city_id, row.day, row.observed_at_ms, row.rain_1h) == (100, date(2025, 12, 9), (H0 + 300) * 1000, 0.5)
    hourly = transforms.hourly_aggregates(observations)
    assert [c.replace("hour_ms", "hour") for c in transforms.cassandra_hourly_values(hourly).columns] == [
        name for name, _ in tables.HOURLY_COLUMNS]
    mysql = transforms.mysql_hourly_values(hourly)
    assert tuple(mysql.columns) == tables.MYSQL_HOURLY_COLUMNS
    assert mysql.collect()[0].hour_start == datetime(2025, 12, 9, 14, 0)
