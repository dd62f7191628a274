"""The energy x weather job's DataFrame functions on tiny hand-made inputs with hand-computed
answers: the readings' validation reasons, the weather city -> region mapping, and the join's
semantics on a real streaming query (file source, memory sink, ``processAllAvailable``): a reading
inside the range matches, one outside is unmatched, the nearest observation is chosen (the earlier
on a tie), regions are kept apart, a reading sent twice is one row."""
from __future__ import annotations

import json
import os
import uuid
from datetime import date, datetime, timezone

import pytest

from spark_apps.streaming.energy_weather import layout, transforms
from tests.spark_apps.streaming.weather.responses import H0, kafka_frame, response

pytestmark = pytest.mark.spark

REGIONS = {"north": 1, "south": 1, "east": 2}


def reading(household="h1", region="north", at="2026-01-05T10:00:00Z", minutes=15, kwh=0.25) -> dict:
    return {"household_id": household, "region": region, "reading_time": at, "interval_minutes": minutes, "kwh": kwh}


def without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


def test_validation_reasons(spark):
    values = [
        reading(),                                                   # 0 valid
        None,                                                        # 1
        b'{"household_id": "h1", "kwh"',                             # 2
        b'[1, 2]',                                                   # 3
        without(without(reading(), "kwh"), "region"),                # 4
        {**reading(), "kwh": "lots"},                                # 5
        {**reading(), "interval_minutes": 15.5},                     # 6
        {**reading(), "reading_time": "yesterday"},                  # 7
        {**reading(), "reading_time": 1767607200},                   # 8
        {**reading(), "kwh": -0.1},                                  # 9
        {**reading(), "kwh": 100.0},                                 # 10: 400 kW for 15 min
        {**reading(), "interval_minutes": 0},                        # 11
        {**reading(), "region": "atlantis"},                         # 12
        {**reading(), "reading_time": "2026-01-05T12:00:01Z"},       # 13: > 1 h after ingest
        {**reading(), "region": None},                               # 14: JSON null is missing
        {**reading(), "kwh": 3},                                     # 15 valid: an integer is a number
    ]
    frame = kafka_frame(spark, [json.dumps(v).encode() if isinstance(v, dict) else v for v in values],
                        topic="energy-readings", ingest_s=int(datetime(2026, 1, 5, 11, tzinfo=timezone.utc).timestamp()))
    rows = transforms.checked_readings(frame, REGIONS).orderBy("offset").collect()
    assert [r.reason for r in rows] == [
        None, "empty_value", "invalid_json", "not_a_json_object", "missing_field:region,kwh", "wrong_type:kwh",
        "wrong_type:interval_minutes", "wrong_type:reading_time", "wrong_type:reading_time", "out_of_range:kwh",
        "out_of_range:kwh", "out_of_range:interval_minutes", "unknown_region:atlantis", "reading_in_future",
        "missing_field:region", None,
    ]
    good = transforms.readings(transforms.checked_readings(frame, REGIONS)).orderBy("source_offset").collect()
    assert [(r.household_id, r.region, r.reading_time, r.interval_minutes, r.kwh, r.source_offset) for r in good] == [
        ("h1", "north", datetime(2026, 1, 5, 10), 15, 0.25, 0), ("h1", "north", datetime(2026, 1, 5, 10), 15, 3.0, 15)]
    letters = [json.loads(r.value) for r in transforms.dead_letters(
        transforms.checked_readings(frame, REGIONS)).collect()]
    assert len(letters) == 14
    by_offset = {d["source_offset"]: d for d in letters}
    assert by_offset[12]["reason"] == "unknown_region:atlantis" and by_offset[12]["source_topic"] == "energy-readings"
    assert json.loads(by_offset[12]["raw_value_text"])["region"] == "atlantis"


def test_weather_goes_to_every_region_of_its_city_only(spark):
    values = [response(1, H0, 4.5, 80, 2.0), response(2, H0 + 60, 11.0, 40, 1.0), response(3, H0, 9.0, 50, 1.0),
              b'{"cod": "404", "message": "city not found"}']
    rows = transforms.weather_by_region(kafka_frame(spark, values), REGIONS).collect()
    at = datetime.fromtimestamp(H0, timezone.utc).replace(tzinfo=None)
    assert sorted((r.weather_region, r.city_id, r.weather_time, r.temperature_c, r.humidity_pct) for r in rows) == [
        ("east", 2, datetime.fromtimestamp(H0 + 60, timezone.utc).replace(tzinfo=None), 11.0, 40.0),
        ("north", 1, at, 4.5, 80.0), ("south", 1, at, 4.5, 80.0)]


# --- the join, streaming -------------------------------------------------------------------------

READING_SCHEMA = ("household_id string, region string, reading_time timestamp, interval_minutes int, kwh double, "
                  "source_partition int, source_offset bigint")
WEATHER_SCHEMA = ("weather_region string, city_id bigint, weather_time timestamp, temperature_c double, "
                  "humidity_pct double")


class Streams:
    """Readings and weather as JSON files that a streaming query picks up batch by batch."""

    def __init__(self, spark, tmp_path):
        self.spark, self.root = spark, tmp_path
        self.offset = 0
        for side in ("readings", "weather"):
            os.makedirs(tmp_path / side)

    def add(self, readings=(), weather=()) -> None:
        for side, rows in (("readings", readings), ("weather", weather)):
            if not rows:
                continue
            lines = []
            for row in rows:
                if side == "readings":
                    household, region, at, kwh = row
                    row = {"household_id": household, "region": region, "reading_time": at, "interval_minutes": 15,
                           "kwh": kwh, "source_partition": 0, "source_offset": self.offset}
                    self.offset += 1
                else:
                    region, city, at, temp = row
                    row = {"weather_region": region, "city_id": city, "weather_time": at, "temperature_c": temp,
                           "humidity_pct": 50.0}
                lines.append(json.dumps(row))
            (self.root / side / f"{uuid.uuid4().hex}.json").write_text("\n".join(lines) + "\n")

    def nearest(self):
        read = self.spark.readStream.option("maxFilesPerTrigger", 100)
        readings = read.schema(READING_SCHEMA).json(str(self.root / "readings"))
        weather = read.schema(WEATHER_SCHEMA).json(str(self.root / "weather"))
        return transforms.nearest_weather(readings, weather, "60 minutes", "10 minutes", "10 minutes", "10 minutes")


def t(hh_mm: str) -> str:
    return f"2026-01-05 {hh_mm}" + (":00" if hh_mm.count(":") == 1 else "")


def ts(hh_mm: str) -> datetime:
    return datetime.fromisoformat(t(hh_mm))


def test_join_matches_inside_the_range_picks_the_nearest_and_emits_the_unmatched(spark, tmp_path):
    streams = Streams(spark, tmp_path)
    streams.add(
        readings=[
            ("a", "north", t("10:00"), 1.0),   # 09:30 (30), 09:55 (5); 10:20 is after +10 min -> 09:55
            ("b", "north", t("10:15"), 2.0),   # 09:30 (45), 09:55 (20), 10:20 (5) -> 10:20
            ("c", "north", t("10:07:30"), 3.0),  # 09:55 and 10:20 both 12.5 min away -> the earlier
            ("d", "north", t("12:00"), 4.0),   # nothing in [11:00, 12:10] -> unmatched
            ("e", "east", t("10:00"), 5.0),    # east gets city 2's weather only: 10:05
            ("f", "south", t("08:20"), 6.0),   # [07:20, 08:30]: the 08:30 observation, at the edge, matches
            ("a", "north", t("10:00"), 1.0),   # a sent twice: one row
        ],
        weather=[("north", 1, t("09:30"), 5.0), ("north", 1, t("09:55"), 6.0), ("north", 1, t("10:20"), 7.0),
                 ("south", 1, t("08:30"), 3.0), ("east", 2, t("10:05"), 20.0)])
    name = f"nearest_{uuid.uuid4().hex[:8]}"
    query = streams.nearest().writeStream.format("memory").queryName(name).outputMode("append").start()
    try:
        query.processAllAvailable()
        # The first batch moves the watermark to min(12:00, 10:20) - 10 min = 10:10: only f (08:20, its
        # range ends 08:30) is final; every other reading may still get a nearer observation.
        assert {r.household_id for r in spark.table(name).collect()} <= {"f"}
        # Later data on both sides moves the watermarks past all of the above.
        streams.add(readings=[("z", "north", t("16:00"), 0.0)], weather=[("north", 1, t("16:00"), 0.0),
                                                                         ("east", 2, t("16:00"), 0.0)])
        query.processAllAvailable()
        streams.add(readings=[("y", "north", t("16:01"), 0.0)])
        query.processAllAvailable()
        rows = {(r.household_id, r.reading_time): r for r in spark.table(name).collect()}
    finally:
        query.stop()
    assert sorted(rows) == sorted((h, ts(at)) for h, at in (("a", "10:00"), ("b", "10:15"), ("c", "10:07:30"),
                                                           ("d", "12:00"), ("e", "10:00"), ("f", "08:20")))
    got = {h: (r.region, r.kwh, r.city_id, r.weather_time, r.temperature_c) for (h, _), r in rows.items()}
    assert got == {
        "a": ("north", 1.0, 1, ts("09:55"), 6.0),
        "b": ("north", 2.0, 1, ts("10:20"), 7.0),
        "c": ("north", 3.0, 1, ts("09:55"), 6.0),
        "d": ("north", 4.0, None, None, None),
        "e": ("east", 5.0, 2, ts("10:05"), 20.0),
        "f": ("south", 6.0, 1, ts("08:30"), 3.0),
    }


def test_joined_and_unmatched_rows_have_the_layout_columns(spark):
    nearest = spark.createDataFrame(
        [("a", datetime(2026, 1, 5, 23, 45), "north", 15, 1.0, 1, datetime(2026, 1, 5, 23, 40), 6.0, 50.0),
         ("d", datetime(2026, 1, 6, 0, 15), "north", 15, 4.0, None, None, None, None)],
        "household_id string, reading_time timestamp, region string, interval_minutes int, kwh double, "
        "city_id bigint, weather_time timestamp, temperature_c double, humidity_pct double")
    joined = transforms.joined_rows(nearest)
    assert [(f.name, f.dataType.simpleString()) for f in joined.schema.fields] == list(layout.JOINED_COLUMNS)
    assert [tuple(r) for r in joined.collect()] == [
        ("a", "north", datetime(2026, 1, 5, 23, 45), 15, 1.0, 1, datetime(2026, 1, 5, 23, 40), 6.0, 50.0,
         date(2026, 1, 5))]
    unmatched = transforms.unmatched_rows(nearest)
    assert [(f.name, f.dataType.simpleString()) for f in unmatched.schema.fields] == list(layout.UNMATCHED_COLUMNS)
    assert [tuple(r) for r in unmatched.collect()] == [
        ("d", "north", datetime(2026, 1, 6, 0, 15), 15, 4.0, "no weather within range", date(2026, 1, 6))]
