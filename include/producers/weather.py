"""Publish OpenWeatherMap current-weather responses to Kafka (topic ``weather-raw``, keyed by city id).

    OPENWEATHER_API_KEY=... python -m include.producers.weather --bootstrap 127.0.0.1:9092 \\
        --city-ids 5344157,2643743 --interval 600 --duration 3600     # live: poll the API
    python -m include.producers.weather --bootstrap 127.0.0.1:9092 --rate 2           # no key: replay
    python -m include.producers.weather --bootstrap 127.0.0.1:9092 --rate 5 --loop --timestamps now --duration 600

Live (``OPENWEATHER_API_KEY`` set, read from the environment only, never logged): every
``--interval`` seconds one call of ``/data/2.5/weather?id=<city>&units=metric`` per city id; the
response body goes to Kafka unchanged. The free plan allows 60 calls a minute: a sliding-window
limiter never makes more (``--calls-per-minute``). A 429 or 5xx answer (or a network error) is
retried after a growing pause (1, 2, 4 ... 60 s, or the ``Retry-After`` the API sends), up to 6
attempts, then the city is skipped for that round; 401 (key refused) stops the producer; other
4xx answers (e.g. 404 for an unknown id) skip the city. OpenWeatherMap updates its data about
every 10 minutes, hence the default interval; polling faster only repeats observations (same
``dt``), which the streaming job deduplicates.

Replay (no key, or ``--replay``): the recorded real responses of
``include/sample_data/openweather_responses/`` (every ``*.jsonl`` file: one response a line; ``*.json``:
one response a file), in file order, at ``--rate`` responses a second. They are published as
the API returned them: the one key their scraper added (``_last_updated_utc``) is taken out
(the rest is byte for byte the recorded JSON). ``--timestamps original`` keeps their ``dt``
(replaying twice gives the same observations again: duplicates for the job to drop);
``--timestamps now`` stamps each response with the time it is sent (``dt``; sunrise and sunset
move by the same amount), one second later than the city's previous one at least, so every
replayed response is a new observation (a live-looking feed from real values).

Topics are never created here (``platform_bootstrap`` creates ``weather-raw``): a missing topic
is :class:`TopicMissing` at once. Airflow tasks call :func:`run_live`, :func:`run_replay` or
:func:`run_for` (live with a key, else replay) directly.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from include.producers.metrics import (
    DeliveryFailed,
    Event,
    ProduceReport,
    TopicMissing,
    make_producer,
    produce_events,
    require_topic,
)
from include.sample_data import OPENWEATHER_RESPONSES

log = logging.getLogger(__name__)

TOPIC = "weather-raw"
API_URL = "https://api.openweathermap.org/data/2.5/weather"
API_KEY_ENV = "OPENWEATHER_API_KEY"
RECORDED_DIR = OPENWEATHER_RESPONSES
SCRAPER_KEY = "_last_updated_utc"  # added by the scraper that recorded the responses, not by the API
FREE_PLAN_CALLS_PER_MINUTE = 60
DEFAULT_INTERVAL_S = 600.0
# Dublin CA (the recorded city), London, Paris, New York, Tokyo, Bengaluru.
DEFAULT_CITY_IDS = (5344157, 2643743, 2988507, 5128581, 1850147, 1277333)
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
HTTP_TIMEOUT_S = 15.0
TIMESTAMP_MODES = ("original", "now")

__all__ = ["DeliveryFailed", "TopicMissing", "ApiKeyRejected", "run_live", "run_replay", "run_for"]


class ApiKeyRejected(RuntimeError):
    """The API refused the key (HTTP 401)."""


class RateLimiter:
    """At most ``max_calls`` calls in any ``period_s`` window: :meth:`acquire` waits when needed."""

    def __init__(self, max_calls: int = FREE_PLAN_CALLS_PER_MINUTE, period_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self.max_calls, self.period_s, self.clock, self.sleep = max_calls, period_s, clock, sleep
        self.calls: deque[float] = deque()

    def acquire(self) -> None:
        while True:
            now = self.clock()
            while self.calls and self.calls[0] <= now - self.period_s:
                self.calls.popleft()
            if len(self.calls) < self.max_calls:
                self.calls.append(now)
                return
            self.sleep(self.calls[0] + self.period_s - now)


@dataclass
class LiveReport:
    topic: str
    rounds: int = 0
    calls: int = 0
    retried: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # "city:reason" -> times
    produce: ProduceReport | None = None

    def as_dict(self) -> dict:
        produce = self.produce.as_dict() if self.produce else {}
        return {"topic": self.topic, "rounds": self.rounds, "calls": self.calls, "retried": self.retried,
                "skipped": dict(sorted(self.skipped.items())), "delivered": produce.get("delivered", 0),
                "failed": produce.get("failed", 0)}


def fetch_current(city_id: int, api_key: str, base_url: str = API_URL,
                  timeout_s: float = HTTP_TIMEOUT_S) -> tuple[int, dict, bytes]:
    """``(status, headers, body)`` of one current-weather call; a network failure is status 0.
    Nothing raised or returned names the URL (it holds the key)."""
    query = urllib.parse.urlencode({"id": city_id, "appid": api_key, "units": "metric"})
    request = urllib.request.Request(f"{base_url}?{query}", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers or {}), error.read() or b""
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return 0, {}, f"{type(error).__name__}: {reason}".encode()


def _retry_after(headers: dict) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff_s(attempt: int, headers: dict | None = None) -> float:
    """Pause before attempt ``attempt + 1``: the API's Retry-After when it sent one, else 1, 2, 4 ... 60 s."""
    after = _retry_after(headers or {})
    if after is not None:
        return min(after, 5 * BACKOFF_CAP_S)
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt)


def poll_city(city_id: int, api_key: str, limiter: RateLimiter, report: LiveReport, base_url: str = API_URL,
              sleep: Callable[[float], None] = time.sleep, fetch=fetch_current) -> bytes | None:
    """The body of one successful call for ``city_id``, or None when the city is skipped this round."""
    for attempt in range(MAX_ATTEMPTS):
        limiter.acquire()
        report.calls += 1
        status, headers, body = fetch(city_id, api_key, base_url)
        if status == 200:
            return body
        if status == 401:
            raise ApiKeyRejected(f"OpenWeatherMap refused the API key (HTTP 401) for city {city_id}: "
                                 f"check {API_KEY_ENV}")
        if status == 429 or status >= 500 or status == 0:
            if attempt + 1 < MAX_ATTEMPTS:
                pause = backoff_s(attempt, headers)
                log.warning("city %s: %s, retrying in %.0fs", city_id, status or body.decode(errors="replace"), pause)
                report.retried += 1
                sleep(pause)
                continue
            reason = f"gave_up_after_{status or 'network_error'}"
        else:
            reason = f"http_{status}"
        log.warning("city %s skipped this round: %s", city_id, reason)
        key = f"{city_id}:{reason}"
        report.skipped[key] = report.skipped.get(key, 0) + 1
        return None
    raise AssertionError("unreachable")


def run_live(
    bootstrap: str,
    topic: str = TOPIC,
    city_ids: Iterable[int] = DEFAULT_CITY_IDS,
    api_key: str | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    rounds: int | None = None,
    duration_s: float | None = None,
    calls_per_minute: int = FREE_PLAN_CALLS_PER_MINUTE,
    base_url: str = API_URL,
    producer_config: dict | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    fetch=fetch_current,
) -> LiveReport:
    """Poll every city once per round, ``interval_s`` apart (from round start to round start),
    for ``rounds`` rounds or ``duration_s`` seconds (neither: until stopped), publishing each
    body unchanged, keyed by the city id. Delivery failures raise :class:`DeliveryFailed`."""
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise ValueError(f"live polling needs an API key: set {API_KEY_ENV}")
    cities = [int(c) for c in city_ids]
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    limiter = RateLimiter(calls_per_minute, 60.0, clock, sleep)
    report = LiveReport(topic=topic, produce=ProduceReport(topic=topic))
    start = clock()
    while rounds is None or report.rounds < rounds:
        round_start = clock()
        if duration_s is not None and round_start - start >= duration_s:
            break
        events = []
        for city in cities:
            body = poll_city(city, api_key, limiter, report, base_url, sleep, fetch)
            if body is not None:
                events.append(Event(str(city).encode(), body))
        if events:
            report.produce.add(produce_events(producer, topic, events))
        report.rounds += 1
        if rounds is not None and report.rounds >= rounds:
            break
        wait = round_start + interval_s - clock()
        if duration_s is not None:
            wait = min(wait, start + duration_s - clock())
        if wait > 0:
            sleep(wait)
    return report


# --- replay ----------------------------------------------------------------------------------


def load_recorded(source: str | os.PathLike = RECORDED_DIR) -> list[bytes]:
    """The recorded responses of a folder (``*.jsonl`` lines, ``*.json`` files; by file name) or of one file."""
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json"))
    responses: list[bytes] = []
    for file in files:
        data = file.read_bytes()
        if file.suffix == ".jsonl":
            responses += [line.strip() for line in data.splitlines() if line.strip()]
        else:
            responses.append(data.strip())
    if not responses:
        raise FileNotFoundError(f"no recorded responses in {path}")
    return responses


class Restamper:
    """Gives each replayed response the time it is sent as ``dt`` (at least one second after the
    city's previous one), moving ``sys.sunrise``/``sys.sunset`` by the same amount."""

    def __init__(self, now: Callable[[], float] = time.time):
        self.now = now
        self.last: dict[object, int] = {}

    def __call__(self, body: dict) -> dict:
        city = body.get("id")
        stamp = max(int(self.now()), self.last.get(city, 0) + 1)
        self.last[city] = stamp
        if isinstance(body.get("dt"), int):
            delta = stamp - body["dt"]
            body["dt"] = stamp
            sys_ = body.get("sys")
            if isinstance(sys_, dict):
                for key in ("sunrise", "sunset"):
                    if isinstance(sys_.get(key), int):
                        sys_[key] += delta
        return body


def replay_event(line: bytes, restamp: Callable[[dict], dict] | None = None) -> Event:
    """One recorded response as the record to publish: the API's JSON (the scraper's key taken
    out; ``restamp`` applied), keyed by the response's city id."""
    body = json.loads(line)
    body.pop(SCRAPER_KEY, None)
    if restamp is not None:
        body = restamp(body)
    value = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Event(str(body.get("id", "")).encode(), value)


def replay_schedule(lines: list[bytes], count: int | None, loop: bool) -> Iterator[bytes]:
    """The responses in order, ``count`` of them (default: each once; ``loop``: over and over)."""
    sent = 0
    while True:
        for line in lines:
            if count is not None and sent >= count:
                return
            yield line
            sent += 1
        if not loop:
            return


def run_replay(
    bootstrap: str,
    topic: str = TOPIC,
    source: str | os.PathLike = RECORDED_DIR,
    rate: float = 1.0,
    count: int | None = None,
    loop: bool = False,
    timestamps: str = "original",
    duration_s: float | None = None,
    producer_config: dict | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> ProduceReport:
    """Publish recorded responses at ``rate`` a second (the ones due are sent together and
    acknowledged before the next wait), ``count`` of them or for ``duration_s`` seconds."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    if timestamps not in TIMESTAMP_MODES:
        raise ValueError(f"timestamps must be one of {TIMESTAMP_MODES}")
    if loop and count is None and duration_s is None and timestamps == "original":
        log.warning("looping over the recorded responses with their original timestamps only repeats them")
    restamp = Restamper(now) if timestamps == "now" else None
    lines = load_recorded(source)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    report = ProduceReport(topic=topic)
    start = clock()
    due: list[bytes] = []
    for index, line in enumerate(replay_schedule(lines, count, loop)):
        at = start + index / rate
        if duration_s is not None and at - start >= duration_s:
            break
        if due and at > clock():  # send what is due before waiting for the next one
            report.add(produce_events(producer, topic, [replay_event(d, restamp) for d in due]))
            due = []
        wait = at - clock()
        if wait > 0:
            sleep(wait)
        due.append(line)
    if due:
        report.add(produce_events(producer, topic, [replay_event(d, restamp) for d in due]))
    return report


def run_for(bootstrap: str, topic: str = TOPIC, duration_s: float | None = None,
            city_ids: Iterable[int] = DEFAULT_CITY_IDS, interval_s: float = DEFAULT_INTERVAL_S,
            replay_rate: float = 0.2, timestamps: str = "now") -> dict:
    """What the supervisor DAG runs: ``duration_s`` (None: until stopped) of live polling when
    ``OPENWEATHER_API_KEY`` is set, else of replaying the recorded responses (in a loop, ``timestamps``)."""
    if os.environ.get(API_KEY_ENV):
        return {"mode": "live", **run_live(bootstrap, topic, city_ids, interval_s=interval_s,
                                           duration_s=duration_s).as_dict()}
    report = run_replay(bootstrap, topic, rate=replay_rate, loop=True, timestamps=timestamps, duration_s=duration_s)
    return {"mode": "replay", **report.as_dict()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--replay", action="store_true", help=f"replay recorded responses even when {API_KEY_ENV} is set")
    live = parser.add_argument_group("live polling (needs OPENWEATHER_API_KEY)")
    live.add_argument("--city-ids", default=",".join(map(str, DEFAULT_CITY_IDS)), help="comma-separated city ids")
    live.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="seconds between rounds")
    live.add_argument("--rounds", type=int, help="number of rounds (default: until --duration or stopped)")
    live.add_argument("--calls-per-minute", type=int, default=FREE_PLAN_CALLS_PER_MINUTE)
    replay = parser.add_argument_group("replay of recorded responses")
    replay.add_argument("--source", default=str(RECORDED_DIR), help="folder or file of recorded responses")
    replay.add_argument("--rate", type=float, default=1.0, help="responses per second")
    replay.add_argument("--count", type=int, help="responses to send (default: each once, or forever with --loop)")
    replay.add_argument("--loop", action="store_true", help="start over at the end")
    replay.add_argument("--timestamps", choices=TIMESTAMP_MODES, default="original",
                        help="keep the recorded dt, or stamp each response with the time it is sent")
    parser.add_argument("--duration", type=float, help="seconds to run")
    args = parser.parse_args(argv)
    if args.calls_per_minute > FREE_PLAN_CALLS_PER_MINUTE:
        log.warning("more than the free plan's %d calls a minute", FREE_PLAN_CALLS_PER_MINUTE)
    return args


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        if os.environ.get(API_KEY_ENV) and not args.replay:
            cities = [int(c) for c in args.city_ids.split(",") if c.strip()]
            result = {"mode": "live", **run_live(args.bootstrap, args.topic, cities, interval_s=args.interval,
                                                 rounds=args.rounds, duration_s=args.duration,
                                                 calls_per_minute=args.calls_per_minute).as_dict()}
        else:
            report = run_replay(args.bootstrap, args.topic, args.source, args.rate, args.count, args.loop,
                                args.timestamps, args.duration)
            result = {"mode": "replay", **report.as_dict()}
    except DeliveryFailed as failure:
        print(json.dumps(failure.report.as_dict()))
        raise
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    try:
        main()
    except (DeliveryFailed, TopicMissing, ApiKeyRejected, FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        sys.exit(1)
