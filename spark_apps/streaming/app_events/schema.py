"""The app-events record, declared once for the producer (include/producers/app_events.py) and the
streaming job (:mod:`.transforms`). No Spark import here: the producer and the DAGs import it.

One record per view of a short video, JSON, keyed by ``user_id`` (decimal text) so one user's
events stay ordered within a partition::

    {"event_id": "0f8fa4a4-...", "user_id": 5000123, "video_id": "v00042", "category": "Dance",
     "watch_time_s": 12.5, "liked": false, "event_time_ms": 1796245062123}

``event_time_ms`` is the event time: when the view ended on the device, epoch **milliseconds**
(UTC by definition). Chosen over ISO-8601 text: no time-zone spelling to get wrong, and one
integer check instead of a pattern parse per record at high rates.
"""
from __future__ import annotations

from dataclasses import dataclass

# The seed's categories (its producer's list, spelled as it printed them).
CATEGORIES: tuple[str, ...] = (
    "Entertainment", "Dance", "Comedy", "Fitness/sports", "Beauty/skin care", "Fashion",
    "Cooking/recipes", "Home reno/DIY", "Pets", "Education", "Travel", "Gaming",
)
# A view longer than an hour is a broken client counter, not a short video watched in a loop.
MAX_WATCH_TIME_S = 3600
# 2000-01-01 in epoch ms: an earlier time is a client clock reset (or seconds sent as ms).
MIN_EVENT_TIME_MS = 946_684_800_000
# An event stamped more than this after its record reached Kafka is refused: it would move the
# stats query's watermark ahead of every honest event and make them all late.
MAX_FUTURE_S = 300


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "string", "integer", "number", "boolean"
    low: float | None = None
    high: float | None = None


# Every field is required (JSON null counts as missing); extra fields are allowed.
FIELDS: tuple[Field, ...] = (
    Field("event_id", "string"),
    Field("user_id", "integer", 1, None),
    Field("video_id", "string"),
    Field("category", "string"),
    Field("watch_time_s", "number", 0, MAX_WATCH_TIME_S),
    Field("liked", "boolean"),
    Field("event_time_ms", "integer", MIN_EVENT_TIME_MS, None),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
