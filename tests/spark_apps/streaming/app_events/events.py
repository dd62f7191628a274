"""App events for the tests: hand-made ones with hand-computed expectations, and a Kafka-shaped frame."""
from __future__ import annotations

import json
from datetime import datetime, timezone

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)  # a whole hour (windows of 1 and 2 minutes align)
T0_MS = int(T0.timestamp() * 1000)
KAFKA_SCHEMA = "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"


def event(event_id: str, user_id: int, category: str, watch_time_s: float, liked: bool, at_ms: int,
          video_id: str = "v0001", **extra) -> dict:
    return {"event_id": event_id, "user_id": user_id, "video_id": video_id, "category": category,
            "watch_time_s": watch_time_s, "liked": liked, "event_time_ms": at_ms, **extra}


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def kafka_frame(spark, values, topic: str = "app-events", partition: int = 0, ingest_ms: int = T0_MS + 3_600_000):
    """A Kafka-shaped static frame: one record per value (bytes, dict or None), offsets 0..n-1,
    all reaching Kafka at ``ingest_ms``."""
    stamp = datetime.fromtimestamp(ingest_ms / 1000, timezone.utc)
    rows = []
    for offset, value in enumerate(values):
        raw = encode(value) if isinstance(value, dict) else value
        key = str(value.get("user_id")).encode() if isinstance(value, dict) else None
        rows.append((key, raw, topic, partition, offset, stamp))
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


# Hand-made views around T0 and their 1-minute stats, computed by hand.
STATS_INPUT = [
    event("a", 1, "Dance", 10.0, True, T0_MS + 5_000),
    event("b", 2, "Dance", 20, False, T0_MS + 30_000),       # an integer watch time is a number too
    event("c", 1, "Dance", 30.0, True, T0_MS + 59_999),      # the window's last millisecond
    event("d", 3, "Dance", 4.0, False, T0_MS + 60_000),      # the next window's first
    event("e", 1, "Comedy", 7.5, False, T0_MS + 10_000),
]
# (category, window start ms) -> (views, likes, avg watch, total watch, distinct users)
STATS_EXPECTED_1MIN = {
    ("Dance", T0_MS): (3, 2, 20.0, 60.0, 2),
    ("Dance", T0_MS + 60_000): (1, 0, 4.0, 4.0, 1),
    ("Comedy", T0_MS): (1, 0, 7.5, 7.5, 1),
}
STATS_EXPECTED_2MIN = {
    ("Dance", T0_MS): (4, 2, 16.0, 64.0, 3),
    ("Comedy", T0_MS): (1, 0, 7.5, 7.5, 1),
}
