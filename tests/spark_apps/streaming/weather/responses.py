"""Weather responses for the tests: the recorded real ones (include/sample_data/openweather_responses/)
and hand-made ones built from the first recorded response, with hand-computed expectations."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from include.producers import weather as producer

RECORDED_DIR = producer.RECORDED_DIR
DUBLIN_CA = 5344157
H0 = 1765288800  # 2025-12-09 14:00:00 UTC, a whole hour
KAFKA_SCHEMA = "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"


def recorded_lines() -> list[bytes]:
    """The recorded responses as they are in the file (with the scraper's extra key)."""
    lines: list[bytes] = []
    for path in sorted(Path(RECORDED_DIR).glob("*.jsonl")):
        lines += [line for line in path.read_bytes().splitlines() if line.strip()]
    return lines


def template() -> dict:
    body = json.loads(recorded_lines()[0])
    body.pop(producer.SCRAPER_KEY, None)
    return body


def response(city_id: int, dt: int, temp: float, humidity: int, wind_speed: float, gust: float | None = None,
             rain: float | None = None, snow: float | None = None, name: str | None = None, **main) -> dict:
    """A valid response of ``city_id`` observed at ``dt`` with these values (the rest recorded)."""
    body = copy.deepcopy(template())
    body.update(id=city_id, dt=dt, name=name or f"city{city_id}")
    body["main"].update(temp=temp, humidity=humidity, temp_min=min(temp, body["main"]["temp_min"]),
                        temp_max=max(temp, body["main"]["temp_max"]), **main)
    body["wind"] = {"speed": wind_speed, "deg": 40, **({"gust": gust} if gust is not None else {})}
    for key, amount in (("rain", rain), ("snow", snow)):
        if amount is not None:
            body[key] = {"1h": amount}
    return body


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def kafka_frame(spark, values, topic: str = "weather-raw", partition: int = 0, ingest_s: int = H0 + 7200):
    """A Kafka-shaped static frame: one record per value (bytes, dict or None), offsets 0..n-1."""
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(ingest_s, timezone.utc)
    rows = []
    for offset, value in enumerate(values):
        raw = encode(value) if isinstance(value, dict) else value
        key = str(value["id"]).encode() if isinstance(value, dict) else None
        rows.append((key, raw, topic, partition, offset, stamp))
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


# Hand-made observations of two cities around H0 and their hourly aggregates, computed by hand.
HOURLY_INPUT = [
    response(100, H0 + 300, temp=10.0, humidity=80, wind_speed=2.0, rain=0.5),
    response(100, H0 + 900, temp=12.5, humidity=70, wind_speed=4.0, gust=7.5),
    response(100, H0 + 900, temp=12.5, humidity=70, wind_speed=4.0, gust=7.5),  # the API's same observation again
    response(100, H0 + 1800, temp=11.0, humidity=75, wind_speed=3.0, rain=1.25),
    response(100, H0 + 3600, temp=-1.5, humidity=95, wind_speed=0.0, snow=0.3),  # the next hour's first second
    response(200, H0 + 3599, temp=20.0, humidity=50, wind_speed=5.5, name="Other"),
]
# (city_id, hour start) -> (observations, temp min/max/mean, humidity min/max/mean, wind mean/max,
#  gust max, rain sum/max, snow sum)
HOURLY_EXPECTED = {
    (100, H0): (3, 10.0, 12.5, 33.5 / 3, 70, 80, 75.0, 3.0, 4.0, 7.5, 1.75, 1.25, 0.0),
    (100, H0 + 3600): (1, -1.5, -1.5, -1.5, 95, 95, 95.0, 0.0, 0.0, None, 0.0, 0.0, 0.3),
    (200, H0): (1, 20.0, 20.0, 20.0, 50, 50, 50.0, 5.5, 5.5, None, 0.0, 0.0, 0.0),
}
