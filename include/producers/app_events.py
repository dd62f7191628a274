"""Publish short-video app engagement events to Kafka (topic ``app-events``, keyed by user id).

    python -m include.producers.app_events --bootstrap 127.0.0.1:9092 --rate 50 --duration 60
    python -m include.producers.app_events --bootstrap 127.0.0.1:9092 --count 20000 --rate 0   # as fast as possible
    ... --invalid-share 0.02 --seed 7        # 2 % deliberately broken records, reproducible

One JSON record per view (spark_apps/streaming/app_events/schema.py has the fields and why the
event time is epoch milliseconds)::

    {"event_id": "3f1c...", "user_id": 5000123, "video_id": "v00042", "category": "Dance",
     "watch_time_s": 12.5, "liked": false, "event_time_ms": 1796245062123}

Realistic skew, as engagement data has it: categories and users are drawn from Zipf-like
distributions (weight ``1 / rank**s``: the top category gets about a third of the views, the
most active user many times the median one), videos per category likewise; the watch time is
log-normal around a per-category median (capped at the video's 180 s), and the chance of a like
grows with it. A ``--seed`` makes the whole stream (ids included) the same on every run; the
event time is when the record is generated (``--start-ms`` fixes it instead, one
``--spacing-ms`` apart: reproducible windows for tests).

``--invalid-share`` breaks that share of records, each in one of :data:`INVALID_KINDS` (the
report counts them by kind), for the dead-letter path. Delivery is checked for every record
(:class:`DeliveryFailed` after counting all); the topic is never created here
(``platform_bootstrap`` creates it; a missing one is :class:`TopicMissing` at once). Airflow tasks
call :func:`run_for`, tests and the bench :func:`run_count` / :func:`generate_events`.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import random
import sys
import time
import uuid
from typing import Callable

from include.producers.metrics import (
    DeliveryFailed,
    Event,
    ProduceReport,
    TopicMissing,
    make_producer,
    produce_events,
    require_topic,
)
from spark_apps.streaming.app_events.schema import CATEGORIES, FIELD_NAMES

TOPIC = "app-events"
DEFAULT_USERS = 10_000
FIRST_USER_ID = 5_000_000  # the seed's user ids start there
VIDEOS_PER_CATEGORY = 500
CATEGORY_SKEW = 1.1  # Zipf exponents: categories, users, videos within a category
USER_SKEW = 0.8
VIDEO_SKEW = 1.0
VIDEO_LENGTH_S = 180.0
# Ways a record can be broken; each must reach the dead-letter topic with the reason it names.
INVALID_KINDS = ("invalid_json", "missing_field", "wrong_type", "unknown_category", "out_of_range")

__all__ = ["DeliveryFailed", "TopicMissing", "AppEventGenerator", "generate_events", "run_count", "run_rate",
           "run_for"]


def zipf_cumulative(n: int, s: float) -> list[float]:
    """Cumulative weights ``1/rank**s`` of ranks 1..n (for ``bisect`` on a uniform draw)."""
    return list(itertools.accumulate(1.0 / (rank ** s) for rank in range(1, n + 1)))


class AppEventGenerator:
    """Deterministic events for a seed: the same ``seed`` gives the same records in the same order."""

    def __init__(self, seed: int | None = None, users: int = DEFAULT_USERS):
        if users < 1:
            raise ValueError("users must be at least 1")
        self.rng = random.Random(seed)
        self.users = users
        self.category_cum = zipf_cumulative(len(CATEGORIES), CATEGORY_SKEW)
        self.user_cum = zipf_cumulative(users, USER_SKEW)
        self.video_cum = zipf_cumulative(VIDEOS_PER_CATEGORY, VIDEO_SKEW)
        # User ranks shuffled onto ids, so the busiest users are not simply the lowest ids.
        self.user_ids = list(range(FIRST_USER_ID, FIRST_USER_ID + users))
        self.rng.shuffle(self.user_ids)
        # A median watch time per category between 6 and 30 s (stable for a seed).
        self.median_watch_s = {c: self.rng.uniform(6.0, 30.0) for c in CATEGORIES}

    def _pick(self, cumulative: list[float]) -> int:
        return bisect.bisect_left(cumulative, self.rng.random() * cumulative[-1])

    def event(self, event_time_ms: int) -> dict:
        rng = self.rng
        category = CATEGORIES[self._pick(self.category_cum)]
        video = self._pick(self.video_cum)
        watch = min(VIDEO_LENGTH_S, rng.lognormvariate(math.log(self.median_watch_s[category]), 0.8))
        liked = rng.random() < 0.03 + 0.3 * watch / VIDEO_LENGTH_S
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "user_id": self.user_ids[self._pick(self.user_cum)],
            "video_id": f"v{CATEGORIES.index(category):02d}{video:04d}",
            "category": category,
            "watch_time_s": round(watch, 1),
            "liked": liked,
            "event_time_ms": int(event_time_ms),
        }

    def broken(self, kind: str, event: dict) -> bytes:
        """The bytes of ``event`` broken in the way ``kind`` names."""
        rng = self.rng
        if kind == "invalid_json":
            text = json.dumps(event)
            return text[: rng.randint(1, len(text) - 1)].encode()  # truncated mid-document
        broken = dict(event)
        if kind == "missing_field":
            del broken[rng.choice(FIELD_NAMES)]
        elif kind == "wrong_type":
            field_, value = rng.choice([("watch_time_s", "12.5"), ("liked", "yes"), ("user_id", 50.5),
                                        ("event_time_ms", "2026-12-02T20:57:42Z")])
            broken[field_] = value
        elif kind == "unknown_category":
            broken["category"] = "Crypto/NFT"
        elif kind == "out_of_range":
            broken["watch_time_s"] = -rng.uniform(1, 100)
        else:
            raise ValueError(f"unknown invalid kind {kind!r}; expected one of {INVALID_KINDS}")
        return json.dumps(broken).encode()

    def records(self, count: int, start_ms: int | None = None, spacing_ms: int = 0,
                invalid_share: float = 0.0, now: Callable[[], float] = time.time) -> list[Event]:
        """``count`` records; event times ``start_ms + i * spacing_ms`` (``start_ms`` None: the
        time each is generated). Each is broken with probability ``invalid_share``."""
        if not 0.0 <= invalid_share <= 1.0:
            raise ValueError("invalid_share must be between 0 and 1")
        events = []
        for i in range(count):
            stamp = int(now() * 1000) if start_ms is None else start_ms + i * spacing_ms
            event = self.event(stamp)
            key = str(event["user_id"]).encode()
            if invalid_share and self.rng.random() < invalid_share:
                kind = self.rng.choice(INVALID_KINDS)
                events.append(Event(key, self.broken(kind, event), kind))
            else:
                events.append(Event(key, json.dumps(event, separators=(",", ":")).encode()))
        return events


def generate_events(count: int, seed: int | None = None, users: int = DEFAULT_USERS, start_ms: int | None = None,
                    spacing_ms: int = 0, invalid_share: float = 0.0) -> list[Event]:
    """``count`` records of a fresh :class:`AppEventGenerator` (see :meth:`AppEventGenerator.records`)."""
    return AppEventGenerator(seed, users).records(count, start_ms, spacing_ms, invalid_share)


def run_count(bootstrap: str, count: int, topic: str = TOPIC, seed: int | None = None, users: int = DEFAULT_USERS,
              start_ms: int | None = None, spacing_ms: int = 0, invalid_share: float = 0.0,
              chunk: int = 10_000, producer_config: dict | None = None) -> ProduceReport:
    """``count`` records as fast as the broker takes them (delivery checked per chunk)."""
    generator = AppEventGenerator(seed, users)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    total = ProduceReport(topic=topic)
    for done in range(0, count, chunk):
        n = min(chunk, count - done)
        first = None if start_ms is None else start_ms + done * spacing_ms
        total.add(produce_events(producer, topic, generator.records(n, first, spacing_ms, invalid_share)))
    return total


def run_rate(bootstrap: str, rate: float, duration_s: float | None, topic: str = TOPIC, seed: int | None = None,
             users: int = DEFAULT_USERS, invalid_share: float = 0.0, producer_config: dict | None = None,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> ProduceReport:
    """About ``rate`` records a second for ``duration_s`` seconds (None: until the process is
    stopped, how the streaming DAG runs it), paced in ticks of at most a second: each tick's
    records are sent and acknowledged before the next wait, so a broker failure stops the
    producer within a tick (plus the flush timeout) instead of at the end."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    generator = AppEventGenerator(seed, users)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    total = ProduceReport(topic=topic)
    tick_s = 1.0 if rate >= 1 else 1.0 / rate  # below 1/s: one record a tick
    per_tick = rate * tick_s
    start = clock()
    sent = 0
    for tick in itertools.count():
        if duration_s is not None and tick * tick_s >= duration_s:
            break
        due = int(round(per_tick * (tick + 1))) - sent  # whole records, no drift over many ticks
        if due:
            total.add(produce_events(producer, topic, generator.records(due, invalid_share=invalid_share)))
            sent += due
        wait = start + (tick + 1) * tick_s - clock()
        if wait > 0:
            sleep(wait)
    return total


def run_for(bootstrap: str, topic: str = TOPIC, duration_s: float | None = None, rate: float = 5.0,
            users: int = DEFAULT_USERS, invalid_share: float = 0.0, seed: int | None = None) -> dict:
    """What the supervisor DAG runs: ``rate`` events a second for ``duration_s`` (None: until stopped)."""
    return run_rate(bootstrap, rate, duration_s, topic, seed, users, invalid_share).as_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second; 0: as fast as possible "
                        "(needs --count)")
    parser.add_argument("--duration", type=float, help="seconds to run at --rate (default: until stopped)")
    parser.add_argument("--count", type=int, help="events to send as fast as possible (with --rate 0)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="distinct users to draw from")
    parser.add_argument("--invalid-share", type=float, default=0.0, help="share of deliberately broken events (0..1)")
    parser.add_argument("--seed", type=int, help="random seed, for a reproducible stream")
    parser.add_argument("--start-ms", type=int, help="event time of the first event (epoch ms; with --count)")
    parser.add_argument("--spacing-ms", type=int, default=0, help="event-time step between events (with --start-ms)")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must not be negative")
    if args.rate == 0 and args.count is None:
        parser.error("--rate 0 (as fast as possible) needs --count")
    if args.count is not None and args.rate != 0:
        parser.error("--count sends as fast as possible: pass --rate 0")
    if args.start_ms is not None and args.count is None:
        parser.error("--start-ms needs --count")
    if not 0.0 <= args.invalid_share <= 1.0:
        parser.error("--invalid-share must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        if args.count is not None:
            report = run_count(args.bootstrap, args.count, args.topic, args.seed, args.users, args.start_ms,
                               args.spacing_ms, args.invalid_share)
        else:
            report = run_rate(args.bootstrap, args.rate, args.duration, args.topic, args.seed, args.users,
                              args.invalid_share)
    except DeliveryFailed as failure:
        print(json.dumps(failure.report.as_dict()))
        raise
    print(json.dumps(report.as_dict()))
    return report.as_dict()


if __name__ == "__main__":
    try:
        main()
    except (DeliveryFailed, TopicMissing) as error:
        print(error, file=sys.stderr)
        sys.exit(1)
