"""Publish household smart-meter readings to Kafka (topic ``energy-readings``, keyed by household).

    python -m include.producers.energy --bootstrap 127.0.0.1:9092 --households 600 --interval-minutes 1
        # live: every minute each household's reading of the minute that ended, spread over the minute
    python -m include.producers.energy --bootstrap 127.0.0.1:9092 --start 2026-12-01T00:00:00Z \\
        --intervals 96 --households 50 --rate 500      # backfill a day of 15-min readings at 500/s
    ... --seed 7 --gap-share 0.01 --late-share 0.02 --late-minutes 5 --invalid-share 0.01

A reading (JSON)::

    {"household_id": "h000042", "region": "us-ca-dublin", "reading_time": "2026-12-02T20:15:00Z",
     "interval_minutes": 15, "kwh": 0.2741}

``reading_time`` is the end of the metering interval (UTC, on a multiple of the interval); ``kwh``
the energy used during the interval. Households are ``h000001`` ..., each in one region
(round-robin over the regions), each region getting its weather from one city
(spark_apps/streaming/energy_weather/regions.py).

**The model** (true coefficients; :func:`power_kw`, the tests and the analysis check them)::

    power_kw = scale(household) * BASE_KW * daily(h) * weekly(d) + TEMP_SLOPE_KW_PER_C * (T - REFERENCE_C)
    daily(h) = 1 + DAILY_AMPLITUDE * cos(2 pi (h - PEAK_HOUR) / 24)     # h: UTC hour of reading_time, fractional
    weekly(d) = WEEKEND_FACTOR on Saturday and Sunday (UTC), else 1
    kwh = max(0, power_kw * interval_h + noise),  noise ~ Normal(0, NOISE_KW * interval_h)

with BASE_KW = 1.0 kW, DAILY_AMPLITUDE = 0.35, PEAK_HOUR = 19, WEEKEND_FACTOR = 1.2,
TEMP_SLOPE_KW_PER_C = -0.03 kW per °C (heating: colder, more), REFERENCE_C = 15 °C,
NOISE_KW = 0.05 kW, scale(household) in [0.7, 1.3] (fixed per household id: crc32). So a
regression of ``kwh`` on temperature over readings of one interval length finds a slope of
``TEMP_SLOPE_KW_PER_C * interval_h`` kWh per °C: -0.0075 kWh/°C for 15-minute readings, -0.0005
for 1-minute ones (the daily and weekly terms are independent of the temperature only as far as
the weather is: live weather is warmer in the afternoon, so also regress on the hour). The clip
at 0 bites only above about 30 °C, for the smallest households at the night trough.

**Which temperature** (T): the weather its region actually gets. The producer reads
``weather-raw`` itself (:class:`WeatherTemperatures`: a plain consumer, assigned to every
partition, from ``lookback`` before the first reading, caught up before every send) and takes,
for a reading at ``t``, the observation of the region's city (OpenWeatherMap ``dt``,
``main.temp``) nearest to ``t`` among those within ``[t - 60 min, t + 10 min]`` that it has seen,
the earlier on a tie - the rule of the streaming join (spark_apps/streaming/energy_weather/), so
the joined row carries the temperature the reading was computed from whenever the join saw the
same observations (a later observation the producer had not seen yet can be nearer in the join).
No such observation: T = REFERENCE_C (no temperature term), counted as ``without_weather``; such
a reading usually ends in ``energy/unmatched/``. Why not a synthetic temperature: then the join
would pair readings with a temperature they were not computed from and the regression would find
nothing; why not the temperature inside the reading: a meter does not measure it.

**Timing.** Live (no ``--start``): the readings of the interval ending at ``b`` are sent over the
next interval, household ``i`` of ``n`` at ``b + i/n * interval`` (a steady ``n / interval``
readings a second; meters do not all report on the boundary). Backfill (``--start``): the same
schedule from ``start`` for ``--intervals`` intervals, sent in that order without waiting for the
clock, at ``--rate`` a second or as fast as possible. **Gaps**: each reading is missing with
probability ``gap_share``; **late** readings: a share ``late_share`` is sent ``late_minutes``
later than its turn (after the next readings). Bad records (``invalid_share``): ``invalid_json``,
``missing_field``, ``wrong_type``, ``negative_kwh``, ``unknown_region``. All random draws come from
one ``random.Random(seed)``: the same arguments (and the same weather) give the same records.

Topics are never created here (``platform_bootstrap`` does: include/platform/topics.py); a missing
topic is :class:`TopicMissing` at once. Airflow calls :func:`run` directly.
"""
from __future__ import annotations

import argparse
import bisect
import heapq
import json
import logging
import math
import random
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Protocol

from include.producers.metrics import (
    DeliveryFailed,
    Event,
    ProduceReport,
    TopicMissing,
    make_producer,
    produce_events,
    require_topic,
)
from spark_apps.streaming.energy_weather.regions import (
    DEFAULT_REGION_CITIES,
    DEFAULT_WEATHER_AFTER,
    DEFAULT_WEATHER_BEFORE,
    interval_seconds,
    parse_region_cities,
)

log = logging.getLogger(__name__)

TOPIC = "energy-readings"
WEATHER_TOPIC = "weather-raw"
REQUIRED_FIELDS = ("household_id", "region", "reading_time", "interval_minutes", "kwh")
INVALID_KINDS = ("invalid_json", "missing_field", "wrong_type", "negative_kwh", "unknown_region")

# The model's true coefficients (module docstring).
BASE_KW = 1.0
DAILY_AMPLITUDE = 0.35
PEAK_HOUR = 19.0
WEEKEND_FACTOR = 1.2
TEMP_SLOPE_KW_PER_C = -0.03
REFERENCE_C = 15.0
NOISE_KW = 0.05
SCALE_LOW, SCALE_HIGH = 0.7, 1.3

# The join's default time range (regions.py declares it for both), in seconds.
WEATHER_BEFORE_S = interval_seconds(DEFAULT_WEATHER_BEFORE)
WEATHER_AFTER_S = interval_seconds(DEFAULT_WEATHER_AFTER)
DEFAULT_INTERVAL_MINUTES = 15
REFRESH_S = 1.0
TICK_S = 0.1  # live and paced sending: what is due is sent (and acknowledged) every tick
__all__ = ["DeliveryFailed", "TopicMissing", "WeatherTemperatures", "power_kw", "reading_kwh", "run"]


# --- the model --------------------------------------------------------------------------------


def household_id(index: int) -> str:
    return f"h{index + 1:06d}"


def household_scale(household: str) -> float:
    """Fixed per household (not drawn from the seed: the same household uses the same, every run)."""
    return SCALE_LOW + (SCALE_HIGH - SCALE_LOW) * (zlib.crc32(household.encode()) % 10_000) / 9_999


def daily_factor(reading_time_s: float) -> float:
    hour = (reading_time_s % 86_400) / 3600
    return 1 + DAILY_AMPLITUDE * math.cos(2 * math.pi * (hour - PEAK_HOUR) / 24)


def weekly_factor(reading_time_s: float) -> float:
    return WEEKEND_FACTOR if datetime.fromtimestamp(reading_time_s, timezone.utc).weekday() >= 5 else 1.0


def power_kw(household: str, reading_time_s: float, temperature_c: float) -> float:
    """The household's mean power over the interval ending at ``reading_time_s``, without noise."""
    base = household_scale(household) * BASE_KW * daily_factor(reading_time_s) * weekly_factor(reading_time_s)
    return base + TEMP_SLOPE_KW_PER_C * (temperature_c - REFERENCE_C)


def reading_kwh(household: str, reading_time_s: float, interval_minutes: int, temperature_c: float,
                rng: random.Random, noise_kw: float = NOISE_KW) -> float:
    hours = interval_minutes / 60
    noise = rng.gauss(0.0, noise_kw * hours) if noise_kw else 0.0
    return round(max(0.0, power_kw(household, reading_time_s, temperature_c) * hours + noise), 6)


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp())


# --- the weather it follows -------------------------------------------------------------------


class Temperatures(Protocol):
    def refresh(self) -> None: ...

    def temperature_at(self, city_id: int, at_s: float) -> float | None: ...


class ObservedTemperatures:
    """Observations by city, ``(dt, temp)`` sorted; the nearest one to a time inside the join's range."""

    def __init__(self, observations: dict[int, list[tuple[int, float]]] | None = None,
                 before_s: int = WEATHER_BEFORE_S, after_s: int = WEATHER_AFTER_S):
        self.before_s, self.after_s = before_s, after_s
        self.by_city: dict[int, list[tuple[int, float]]] = {}
        for city, items in (observations or {}).items():
            for dt, temp in items:
                self.add(city, dt, temp)

    def add(self, city_id: int, dt: int, temp: float) -> None:
        items = self.by_city.setdefault(int(city_id), [])
        position = bisect.bisect_left(items, (dt, -math.inf))
        if position < len(items) and items[position][0] == dt:
            items[position] = (dt, temp)  # the same observation again (the API repeats until the next report)
        else:
            items.insert(position, (dt, temp))

    def refresh(self) -> None:
        """Nothing to read: a fixed set of observations."""

    def temperature_at(self, city_id: int, at_s: float) -> float | None:
        items = self.by_city.get(int(city_id), [])
        low = bisect.bisect_left(items, (at_s - self.before_s, -math.inf))
        high = bisect.bisect_right(items, (at_s + self.after_s, math.inf))
        best = None
        for dt, temp in items[low:high]:
            distance = abs(dt - at_s)
            if best is None or distance < best[0]:  # strictly nearer: the earlier wins a tie (sorted by dt)
                best = (distance, temp)
        return None if best is None else best[1]


def parse_observation(value: bytes | None) -> tuple[int, int, float] | None:
    """``(city_id, dt, temp)`` of a current-weather response; None for anything else (the weather
    job dead-letters those)."""
    try:
        body = json.loads(value)
        city, dt, temp = body["id"], body["dt"], body["main"]["temp"]
    except (TypeError, ValueError, KeyError):
        return None
    if not (isinstance(city, int) and isinstance(dt, int) and isinstance(temp, (int, float))
            and not isinstance(temp, bool) and -100 <= temp <= 70):
        return None
    return city, dt, float(temp)


class WeatherTemperatures(ObservedTemperatures):
    """The observations of ``weather-raw``, read by a plain consumer (no group offsets committed):
    every partition from the records stamped ``since_s`` on; :meth:`refresh` reads up to the end
    the partitions had when it was called."""

    def __init__(self, bootstrap: str, topic: str = WEATHER_TOPIC, since_s: float | None = None,
                 consumer_config: dict | None = None, before_s: int = WEATHER_BEFORE_S,
                 after_s: int = WEATHER_AFTER_S, timeout_s: float = 10.0):
        from confluent_kafka import Consumer, TopicPartition

        super().__init__(None, before_s, after_s)
        self.topic, self.timeout_s = topic, timeout_s
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"energy-producer-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  **(consumer_config or {})})
        metadata = self.consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise TopicMissing(f"weather topic {topic!r} does not exist on the broker (platform_bootstrap creates it)")
        partitions = sorted(metadata.partitions)
        found = {p: -1 for p in partitions}
        if since_s is not None:
            wanted = [TopicPartition(topic, p, int(since_s * 1000)) for p in partitions]
            found = {t.partition: t.offset for t in self.consumer.offsets_for_times(wanted, timeout=timeout_s)}
        # The next offset to read per partition, tracked here (not the consumer's position, unknown
        # until its first fetch): from the first record stamped since_s (none: the partition's end),
        # or from the first retained one.
        self.next_offset: dict[int, int] = {}
        for partition in partitions:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s,
                                                            cached=False)
            if since_s is None:
                self.next_offset[partition] = low
            else:
                self.next_offset[partition] = found[partition] if found[partition] >= 0 else high
        self.consumer.assign([TopicPartition(topic, p, o) for p, o in self.next_offset.items()])
        self.seen = 0

    def refresh(self) -> None:
        from confluent_kafka import TopicPartition

        ends = {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout_s,
                                                       cached=False)[1] for p in self.next_offset}
        deadline = time.monotonic() + self.timeout_s
        while any(self.next_offset[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                log.warning("weather topic %s not read to its end within %.0f s", self.topic, self.timeout_s)
                return
            for message in self.consumer.consume(500, timeout=0.2):
                if message.error():
                    continue
                self.next_offset[message.partition()] = message.offset() + 1
                observation = parse_observation(message.value())
                if observation is not None:
                    self.add(*observation)
                    self.seen += 1

    def close(self) -> None:
        self.consumer.close()


# --- readings ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Planned:
    send_at_s: float
    sequence: int
    household: str = field(compare=False)
    region: str = field(compare=False)
    reading_time_s: int = field(compare=False)
    late: bool = field(compare=False)


@dataclass
class EnergyReport:
    produce: ProduceReport
    gaps: int = 0
    late: int = 0
    without_weather: int = 0
    intervals: int = 0

    def as_dict(self) -> dict:
        return {**self.produce.as_dict(), "gaps": self.gaps, "late": self.late,
                "without_weather": self.without_weather, "intervals": self.intervals}


def households_of(count: int, region_cities: dict[str, int]) -> list[tuple[str, str]]:
    """``(household_id, region)``, round-robin over the regions."""
    regions = list(region_cities)
    if not regions:
        raise ValueError("no regions to place households in")
    return [(household_id(i), regions[i % len(regions)]) for i in range(count)]


def plan(households: list[tuple[str, str]], first_boundary_s: int, interval_minutes: int, intervals: int | None,
         rng: random.Random, report: EnergyReport, gap_share: float = 0.0, late_share: float = 0.0,
         late_minutes: float = 5.0) -> Iterator[Planned]:
    """Every reading to send, in sending order (``send_at_s``: seconds after the first boundary)."""
    interval_s = interval_minutes * 60
    n = len(households)
    pending: list[Planned] = []
    sequence = 0
    k = 0
    while intervals is None or k < intervals or pending:
        # All of interval k's readings are sent at or after its boundary: generate it once the
        # earliest pending reading is due no sooner.
        while (intervals is None or k < intervals) and (not pending or pending[0].send_at_s >= k * interval_s):
            boundary = first_boundary_s + k * interval_s
            for i, (household, region) in enumerate(households):
                if rng.random() < gap_share:
                    report.gaps += 1
                    continue
                late = rng.random() < late_share
                send_at = k * interval_s + i * interval_s / n + (late_minutes * 60 if late else 0.0)
                heapq.heappush(pending, Planned(send_at, sequence, household, region, boundary, late))
                sequence += 1
            k += 1
            report.intervals = k
        if pending:
            yield heapq.heappop(pending)


def reading_body(item: Planned, interval_minutes: int, kwh: float) -> dict:
    return {"household_id": item.household, "region": item.region, "reading_time": iso(item.reading_time_s),
            "interval_minutes": interval_minutes, "kwh": kwh}


def broken_payload(kind: str, body: dict, rng: random.Random) -> bytes:
    if kind == "invalid_json":
        text = json.dumps(body)
        return text[: rng.randint(1, len(text) - 1)].encode()
    broken = dict(body)
    if kind == "missing_field":
        del broken[rng.choice(REQUIRED_FIELDS)]
    elif kind == "wrong_type":
        field_ = rng.choice(("kwh", "interval_minutes", "reading_time"))
        broken[field_] = {"kwh": "lots", "interval_minutes": 15.5, "reading_time": 1764706500}[field_]
    elif kind == "negative_kwh":
        broken["kwh"] = -abs(body["kwh"]) - 0.001
    elif kind == "unknown_region":
        broken["region"] = "atlantis"
    else:
        raise ValueError(f"unknown invalid kind {kind!r}; expected one of {INVALID_KINDS}")
    return json.dumps(broken).encode()


def make_event(item: Planned, interval_minutes: int, region_cities: dict[str, int], temperatures: Temperatures,
               rng: random.Random, report: EnergyReport, invalid_share: float, noise_kw: float) -> Event:
    temperature = temperatures.temperature_at(region_cities[item.region], item.reading_time_s)
    if temperature is None:
        report.without_weather += 1
        temperature = REFERENCE_C
    if item.late:
        report.late += 1
    body = reading_body(item, interval_minutes,
                        reading_kwh(item.household, item.reading_time_s, interval_minutes, temperature, rng, noise_kw))
    if invalid_share and rng.random() < invalid_share:
        kind = rng.choice(INVALID_KINDS)
        return Event(item.household.encode(), broken_payload(kind, body, rng), kind)
    return Event(item.household.encode(), json.dumps(body, separators=(",", ":")).encode())


def run(
    bootstrap: str,
    topic: str = TOPIC,
    households: int = 100,
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
    region_cities: dict[str, int] | None = None,
    start_s: int | None = None,
    intervals: int | None = None,
    rate: float | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    gap_share: float = 0.01,
    late_share: float = 0.02,
    late_minutes: float = 5.0,
    invalid_share: float = 0.0,
    noise_kw: float = NOISE_KW,
    weather_topic: str = WEATHER_TOPIC,
    weather_before_s: int = WEATHER_BEFORE_S,
    weather_after_s: int = WEATHER_AFTER_S,
    temperatures: Temperatures | None = None,
    producer_config: dict | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> EnergyReport:
    """Produce readings (module docstring). ``start_s`` None: live from the last interval boundary,
    until ``intervals`` intervals or ``duration_s`` seconds (neither: until stopped); else a backfill
    from ``start_s`` of ``intervals`` intervals, at ``rate`` a second or as fast as possible.
    ``temperatures`` None: :class:`WeatherTemperatures` over ``weather_topic``, taking the nearest
    observation within [reading - ``weather_before_s``, reading + ``weather_after_s``] (give the
    join's range: a temperature the join cannot pair would only add noise to the regression)."""
    if interval_minutes < 1 or households < 1:
        raise ValueError("households and interval_minutes must be at least 1")
    for name, share in (("gap_share", gap_share), ("late_share", late_share), ("invalid_share", invalid_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    live = start_s is None
    if not live and intervals is None:
        raise ValueError("a backfill (start) needs a number of intervals")
    region_cities = dict(region_cities or DEFAULT_REGION_CITIES)
    interval_s = interval_minutes * 60
    first = int(clock() // interval_s * interval_s) if live else int(start_s // interval_s * interval_s)
    rng = random.Random(seed)
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    own_temperatures = temperatures is None
    if own_temperatures:
        temperatures = WeatherTemperatures(bootstrap, weather_topic, since_s=first - weather_before_s - 3600,
                                           before_s=weather_before_s, after_s=weather_after_s)
    report = EnergyReport(produce=ProduceReport(topic=topic))
    started = clock()
    due: list[Event] = []
    last_send = time.monotonic()
    last_refresh = -math.inf

    def refresh() -> None:
        # Catching up costs a metadata round trip per partition: at most once a second (the
        # weather changes every few minutes).
        nonlocal last_refresh
        if time.monotonic() - last_refresh >= REFRESH_S:
            temperatures.refresh()
            last_refresh = time.monotonic()

    def flush() -> None:
        nonlocal due, last_send
        if due:
            report.produce.add(produce_events(producer, topic, due))
            due = []
        last_send = time.monotonic()

    try:
        refresh()
        schedule = plan(households_of(households, region_cities), first, interval_minutes, intervals, rng, report,
                        gap_share, late_share, late_minutes)
        for index, item in enumerate(schedule):
            if live:
                at = first + item.send_at_s  # wall clock
            elif rate is not None:
                at = started + index / rate
            else:
                at = None
            if duration_s is not None and (at if at is not None else clock()) - started >= duration_s:
                break
            if at is not None and at > clock():
                flush()  # what is due goes before the wait
                refresh()
                while (wait := at - clock()) > 0:  # one reading of the clock: it moves between two
                    sleep(min(TICK_S, wait))
            elif at is None and len(due) >= 10_000:
                flush()
            elif at is not None and time.monotonic() - last_send >= TICK_S:
                flush()
                refresh()
            due.append(make_event(item, interval_minutes, region_cities, temperatures, rng, report,
                                  invalid_share, noise_kw))
        flush()
    finally:
        if own_temperatures:
            temperatures.close()
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--weather-topic", default=WEATHER_TOPIC, help="where the temperatures come from")
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--interval-minutes", type=int, default=DEFAULT_INTERVAL_MINUTES)
    parser.add_argument("--region-cities", help="region=city_id,... (default: the six weather cities' regions)")
    parser.add_argument("--start", help="backfill from this UTC time (ISO 8601); default: live from now")
    parser.add_argument("--intervals", type=int, help="intervals to produce (backfill: required)")
    parser.add_argument("--rate", type=float, help="backfill: readings a second (default: as fast as possible)")
    parser.add_argument("--duration", type=float, help="seconds to run")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--gap-share", type=float, default=0.01, help="share of missing readings")
    parser.add_argument("--late-share", type=float, default=0.02, help="share of readings sent late")
    parser.add_argument("--late-minutes", type=float, default=5.0, help="how late those are sent")
    parser.add_argument("--invalid-share", type=float, default=0.0, help="share of deliberately broken records")
    parser.add_argument("--noise-kw", type=float, default=NOISE_KW)
    parser.add_argument("--weather-before-s", type=int, default=WEATHER_BEFORE_S,
                        help="temperature: the nearest observation at most this long before a reading")
    parser.add_argument("--weather-after-s", type=int, default=WEATHER_AFTER_S,
                        help="... or at most this long after it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        report = run(args.bootstrap, args.topic, args.households, args.interval_minutes,
                     parse_region_cities(args.region_cities), parse_iso(args.start) if args.start else None,
                     args.intervals, args.rate, args.duration, args.seed, args.gap_share, args.late_share,
                     args.late_minutes, args.invalid_share, args.noise_kw, args.weather_topic,
                     args.weather_before_s, args.weather_after_s)
    except DeliveryFailed as failure:
        print(json.dumps(failure.report.as_dict()))
        raise
    print(json.dumps(report.as_dict()))
    return report.as_dict()


if __name__ == "__main__":
    try:
        main()
    except (DeliveryFailed, TopicMissing, ValueError) as error:
        print(error, file=sys.stderr)
        sys.exit(1)
