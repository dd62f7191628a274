"""The energy x weather job end to end on the real broker: hand-made weather and the real producer's
readings (gaps, late readings, broken records; its temperatures read from the weather topic) in,
the job's three queries run in the test's Spark session, and the lake's Parquet and the dead
letters checked against what the test itself computes from what was produced: each valid reading
exactly once, joined with its nearest observation in range (the one the producer computed its kWh
from) or unmatched, every broken record a dead letter with its reason; run again from the
checkpoints and nothing changes, a reading sent twice is one row."""
from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from include.producers import energy
from spark_apps.streaming.energy_weather import job, layout
from tests.spark_apps.streaming.waiting import wait_for
from tests.spark_apps.streaming.weather.responses import H0, response

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(1200)]

DUBLIN = 5344157
REGIONS = {"dublin-east": DUBLIN, "dublin-west": DUBLIN, "nowhere": 999}
BEFORE_S, AFTER_S = 3600, 600
# Observations: none between 14:30 and 15:30 UTC, so readings at 14:45-15:15 have none in range.
WEATHER = [(H0 - 1800, 4.0), (H0 + 5400, 12.0)]
INTERVALS = 8  # 15-minute readings from H0 (14:00) to 15:45
FLUSH_AT = H0 + 86400  # a reading and an observation a day later push both watermarks past the rest


def utc(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc).replace(tzinfo=None)


def valid_reading(value: bytes) -> dict | None:
    """The test's own reading of a record: a reading the job must accept, else None."""
    try:
        body = json.loads(value)
    except ValueError:
        return None
    if set(body) != {"household_id", "region", "reading_time", "interval_minutes", "kwh"}:
        return None
    if not (isinstance(body["kwh"], (int, float)) and isinstance(body["interval_minutes"], int)
            and isinstance(body["reading_time"], str)):
        return None
    if body["kwh"] < 0 or body["region"] not in REGIONS:
        return None
    return body


def nearest(region: str, at: int) -> tuple[int, float] | None:
    if REGIONS[region] != DUBLIN:
        return None
    inside = [(abs(dt - at), dt, temp) for dt, temp in WEATHER if at - BEFORE_S <= dt <= at + AFTER_S]
    return min(inside)[1:] if inside else None


class Run:
    def __init__(self, spark, broker, tmp_path):
        self.spark, self.broker = spark, broker
        self.readings = broker.create_topic(partitions=2)
        self.weather = broker.create_topic(partitions=2)
        self.dead = broker.create_topic(partitions=1)
        self.lake = f"file://{tmp_path}/lake"
        self.checkpoint = f"file://{tmp_path}/checkpoints/energy_weather"

    def start(self):
        return job.start_queries(self.spark, self.broker.bootstrap, self.lake, self.checkpoint, REGIONS,
                                 self.readings, self.weather, self.dead, trigger_seconds=0.5)

    def dataset(self, folder: str):
        try:
            return self.spark.read.parquet(f"{self.lake}/{folder}")
        except Exception as error:  # not written yet
            if "PATH_NOT_FOUND" in str(error) or "UNABLE_TO_INFER_SCHEMA" in str(error):
                return None
            raise

    def count(self, folder: str) -> int:
        frame = self.dataset(folder)
        return 0 if frame is None else frame.count()

    def run_until(self, joined: int, unmatched: int, dead: int) -> None:
        queries = self.start()
        try:
            def done() -> bool:
                for query in queries:
                    assert query.exception() is None, query.exception()
                return ((self.count(layout.JOINED_DIR), self.count(layout.UNMATCHED_DIR), len(self.dead_letters()))
                        == (joined, unmatched, dead))
            wait_for(done, 400, "the joined, unmatched and dead-letter counts", interval_s=2)
            for query in queries:
                query.processAllAvailable()
            time.sleep(3)  # a few more (empty) batches: nothing more may come
        finally:
            for query in queries:
                query.stop()

    def dead_letters(self) -> list[dict]:
        return [json.loads(r.value()) for r in self.broker.consume_all(self.dead, partitions=1)]


def test_readings_join_the_weather_they_were_computed_from_exactly_once(spark, kafka_broker, tmp_path):
    run = Run(spark, kafka_broker, tmp_path)
    kafka_broker.produce(run.weather, [(str(DUBLIN).encode(), json.dumps(response(DUBLIN, dt, temp, 70, 2.0)).encode(),
                                        i % 2) for i, (dt, temp) in enumerate(WEATHER)]
                         + [(b"x", b'{"cod": "404", "message": "city not found"}', 0)])
    report = energy.run(kafka_broker.bootstrap, run.readings, households=9, interval_minutes=15,
                        region_cities=REGIONS, start_s=H0, intervals=INTERVALS, seed=3, gap_share=0.1,
                        late_share=0.2, late_minutes=20, invalid_share=0.1, noise_kw=0.0, weather_topic=run.weather)
    assert report.produce.delivered == 9 * INTERVALS - report.gaps and report.gaps > 0 and report.late > 0
    records = kafka_broker.consume_all(run.readings, partitions=2)
    valid = {}
    for record in records:
        body = valid_reading(record.value())
        if body is not None:
            valid[(body["household_id"], energy.parse_iso(body["reading_time"]))] = body
    assert len(valid) == report.produce.valid
    # A reading sent twice (the first three valid ones again) and the flush pair.
    again = [r for r in records if valid_reading(r.value()) is not None][:3]
    kafka_broker.produce(run.readings, [(r.key(), r.value(), r.partition()) for r in again])
    flush = {"household_id": "flush", "region": "dublin-east", "reading_time": energy.iso(FLUSH_AT),
             "interval_minutes": 15, "kwh": 0.1}
    kafka_broker.produce(run.readings, [(b"flush", json.dumps(flush).encode(), 0)])
    kafka_broker.produce(run.weather, [(str(DUBLIN).encode(),
                                        json.dumps(response(DUBLIN, FLUSH_AT, 1.0, 70, 2.0)).encode(), 0)])

    expected_joined, expected_unmatched = {}, {}
    for (household, at), body in valid.items():
        match = nearest(body["region"], at)
        if match is None:
            expected_unmatched[(household, utc(at))] = (body["region"], body["kwh"])
            assert body["kwh"] == round(energy.power_kw(household, at, energy.REFERENCE_C) * 0.25, 6)
        else:
            expected_joined[(household, utc(at))] = (body["region"], body["kwh"], DUBLIN, utc(match[0]), match[1])
            # The producer computed the reading from the very observation the join picks.
            assert body["kwh"] == round(energy.power_kw(household, at, match[1]) * 0.25, 6)
    assert expected_joined and expected_unmatched
    assert {r for r, _ in expected_unmatched.values()} == {"dublin-east", "dublin-west", "nowhere"}

    run.run_until(len(expected_joined), len(expected_unmatched), report.produce.invalid)

    joined = run.dataset(layout.JOINED_DIR)
    assert [(f.name, f.dataType.simpleString()) for f in joined.schema.fields] == list(layout.JOINED_COLUMNS)
    got = {(r.household_id, r.reading_time): (r.region, r.kwh, r.city_id, r.weather_time, r.temperature_c)
           for r in joined.collect()}
    assert got == expected_joined
    assert {r.event_date for r in joined.collect()} == {utc(H0).date()}
    unmatched = run.dataset(layout.UNMATCHED_DIR).collect()
    assert {(r.household_id, r.reading_time): (r.region, r.kwh) for r in unmatched} == expected_unmatched
    assert {r.reason for r in unmatched} == {"no weather within range"}

    letters = run.dead_letters()
    prefixes = {"invalid_json": "invalid_json", "missing_field": "missing_field:", "wrong_type": "wrong_type:",
                "negative_kwh": "out_of_range:kwh", "unknown_region": "unknown_region:atlantis"}
    assert Counter(next(k for k, p in prefixes.items() if d["reason"].startswith(p)) for d in letters) == Counter(
        report.produce.invalid_by_kind)
    assert {d["source_topic"] for d in letters} == {run.readings}
    coordinates = {(r.partition(), r.offset()) for r in records}
    assert all((d["source_partition"], d["source_offset"]) in coordinates for d in letters)

    # Again from the checkpoints: nothing new in the lake, no dead letter twice.
    run.run_until(len(expected_joined), len(expected_unmatched), report.produce.invalid)
    assert run.count(layout.JOINED_DIR) == len(expected_joined)
