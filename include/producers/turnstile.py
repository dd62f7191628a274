"""Publish NYC MTA turnstile readings to Kafka (topic ``turnstile-readings``, keyed by turnstile).

    python -m include.producers.turnstile --bootstrap 127.0.0.1:9092                 # the shared real week, at once
    python -m include.producers.turnstile --bootstrap 127.0.0.1:9092 --speedup 1440  # one real day a minute
    python -m include.producers.turnstile --bootstrap 127.0.0.1:9092 --generate --stations 200 --days 7 --seed 1

Replay: the rows of MTA turnstile files (``C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,
ENTRIES,EXITS``; a file or a folder of ``*.csv``/``*.txt``; default the real week in
``include/sample_data/mta_turnstile_sample/``) in event-time order (``DATE`` + ``TIME``; rows of the same
time keep their file order), each one JSON object with the original fields: the header's names
without the MTA's trailing spaces, the values exactly as in the file (strings: zero padding and
trailing spaces included, for the job to clean). The key is the turnstile, ``C/A:UNIT:SCP``, so one
turnstile's readings stay in order within a partition. ``--speedup N`` sends N seconds of event time
per second (1440: a day a minute); without it, as fast as the broker takes them.

Generate: :func:`generate_week` writes realistic weeks of any size for tests and benchmarks:
stations with several turnstiles, readings every 4 hours at per-turnstile offsets, and the faults of
the real files - counters that wrap past their 10 digits, turnstiles that count down, counters reset
to a small value, ``RECOVR AUD`` rows repeating a ``REGULAR`` reading, readings published late
(after later ones), zero-padded values and trailing spaces. It is seeded: the same arguments give
the same readings.

Topics are never created here (``platform_bootstrap`` creates ``turnstile-readings``): a missing
topic is :class:`TopicMissing` at once. Airflow tasks call :func:`run_replay` directly.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

from include.platform.settings import default_home
from include.producers.metrics import (
    DeliveryFailed,
    Event,
    ProduceReport,
    TopicMissing,
    make_producer,
    produce_events,
    require_topic,
)
from include.sample_data import MTA_TURNSTILE_SAMPLE

TOPIC = "turnstile-readings"
SAMPLE_DIR = MTA_TURNSTILE_SAMPLE  # the real week shipped in include/sample_data
# Where `dp demo-data` puts the week the turnstile_streaming DAG replays (the shared one when empty).
DEMO_DIR = default_home() / "incoming" / "turnstile"
FIELDS = ("C/A", "UNIT", "SCP", "STATION", "LINENAME", "DIVISION", "DATE", "TIME", "DESC", "ENTRIES", "EXITS")
TIME_FORMAT = "%m/%d/%Y %H:%M:%S"
READING_INTERVAL = timedelta(hours=4)
# The MTA's counters have 10 decimal digits: a counter past 9,999,999,999 starts again at 0.
COUNTER_MODULUS = 10**10
# Events sent between two checks of the pacing clock (and delivery reports) when replaying fast.
SEND_CHUNK = 5000

__all__ = ["DeliveryFailed", "TopicMissing", "Reading", "read_readings", "generate_week", "run_replay",
           "run_generated"]


@dataclass(frozen=True)
class Reading:
    """One row of a turnstile file: ``fields`` as in the file, ``at`` its event time (naive, local)."""
    fields: dict[str, str]
    at: datetime

    @property
    def turnstile(self) -> str:
        return ":".join(self.fields[name].strip() for name in ("C/A", "UNIT", "SCP"))

    def event(self) -> Event:
        value = json.dumps(self.fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return Event(self.turnstile.encode(), value)


def event_time(fields: dict[str, str]) -> datetime:
    return datetime.strptime(f"{fields['DATE'].strip()} {fields['TIME'].strip()}", TIME_FORMAT)


def _files(source: str | Path) -> list[Path]:
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".csv", ".txt"))
    if not files:
        raise FileNotFoundError(f"no turnstile files in {path}")
    return files


def read_readings(source: str | Path = SAMPLE_DIR) -> list[Reading]:
    """Every row of the files of ``source``, in event-time order (ties in file order). Rows whose
    date or time does not parse have no place in that order: they come first (the job
    dead-letters them)."""
    readings: list[tuple[int, Reading]] = []
    unparsed: list[Reading] = []
    for file in _files(source):
        with file.open(newline="") as handle:
            rows = csv.reader(handle)
            header = [name.strip() for name in next(rows)]
            for row in rows:
                if not row:
                    continue
                fields = dict(zip(header, row))
                try:
                    readings.append((len(readings), Reading(fields, event_time(fields))))
                except (KeyError, ValueError):
                    unparsed.append(Reading(fields, datetime.min))
    ordered = [r for _, r in sorted(readings, key=lambda item: (item[1].at, item[0]))]
    return unparsed + ordered


def schedule(readings: list[Reading], speedup: float | None) -> Iterator[tuple[float, list[Reading]]]:
    """``(seconds after the start, readings due then)``: without a speed-up everything at once (in
    chunks of :data:`SEND_CHUNK`), else each event-time instant at ``(at - first) / speedup``."""
    if not readings:
        return
    if speedup is None:
        for start in range(0, len(readings), SEND_CHUNK):
            yield 0.0, readings[start:start + SEND_CHUNK]
        return
    first = next((r.at for r in readings if r.at != datetime.min), readings[0].at)
    due: list[Reading] = []
    due_at = 0.0
    for reading in readings:
        at = max(0.0, (reading.at - first).total_seconds() / speedup) if reading.at != datetime.min else 0.0
        if due and (at > due_at or len(due) >= SEND_CHUNK):
            yield due_at, due
            due = []
        if not due:
            due_at = at
        due.append(reading)
    if due:
        yield due_at, due


def publish(readings: list[Reading], bootstrap: str, topic: str = TOPIC, speedup: float | None = None,
            producer_config: dict | None = None, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> ProduceReport:
    """Send ``readings`` in their order, paced by ``speedup`` (None: as fast as possible); every
    chunk is acknowledged before the next wait. Delivery failures raise :class:`DeliveryFailed`."""
    if speedup is not None and speedup <= 0:
        raise ValueError("speedup must be positive (or None: as fast as possible)")
    producer = make_producer(bootstrap, producer_config)
    require_topic(producer, topic)
    report = ProduceReport(topic=topic)
    start = clock()
    for offset_s, due in schedule(readings, speedup):
        wait = start + offset_s - clock()
        if wait > 0:
            sleep(wait)
        report.add(produce_events(producer, topic, [r.event() for r in due]))
    return report


def run_replay(bootstrap: str, topic: str = TOPIC, source: str | Path = SAMPLE_DIR, speedup: float | None = None,
               producer_config: dict | None = None) -> ProduceReport:
    """Replay the real files of ``source``."""
    return publish(read_readings(source), bootstrap, topic, speedup, producer_config)


def demo_source() -> Path:
    """What the DAG replays: the week `dp demo-data` copied, else the shared one."""
    return DEMO_DIR if DEMO_DIR.is_dir() and any(DEMO_DIR.glob("*.csv")) else SAMPLE_DIR


# --- generated weeks ----------------------------------------------------------------------------

LINES = ("NQR", "456", "ACE", "BDFM", "1237", "L", "G", "JZ", "7", "S")
DIVISIONS = ("BMT", "IRT", "IND")


@dataclass(frozen=True)
class Faults:
    """Share of turnstiles (or readings) with each fault of the real files."""
    count_down: float = 0.03  # turnstiles whose counters decrease
    reset: float = 0.02  # turnstiles whose counter is reset to a small value once in the week
    wrap: float = 0.01  # turnstiles whose counter passes 9,999,999,999 during the week
    recovr_duplicate: float = 0.01  # readings followed by a RECOVR AUD copy (counts may differ a little)
    late: float = 0.005  # readings published after the next readings of every turnstile
    late_by: int = 3  # how many reading rounds (4 h each) a late reading is held back
    padded: float = 0.5  # share of turnstiles whose values are zero-padded to 10 digits
    trailing_spaces: float = 0.1  # share of rows with trailing spaces on every value


def _value(counter: int, padded: bool, spaces: bool) -> str:
    text = f"{counter:010d}" if padded else str(counter)
    return f"{text}   " if spaces else text


def generate_week(stations: int = 10, turnstiles_per_station: int = 4, days: int = 7,
                  start: datetime = datetime(2015, 6, 20), seed: int = 0, faults: Faults = Faults()) -> list[Reading]:
    """Readings of ``stations`` x ``turnstiles_per_station`` turnstiles for ``days`` days, in the order
    they are published (event-time order, except the late ones)."""
    rng = random.Random(seed)
    rounds = int(days * timedelta(days=1) / READING_INTERVAL)
    per_round: list[list[Reading]] = [[] for _ in range(rounds)]
    for station in range(stations):
        name = f"STATION {station + 1:03d}"
        line = LINES[station % len(LINES)]
        division = DIVISIONS[station % len(DIVISIONS)]
        unit = f"R{station + 1:03d}"
        for t in range(turnstiles_per_station):
            ca = f"A{station + 1:03d}"
            scp = f"00-00-{t:02d}"
            offset = timedelta(minutes=rng.choice((0, 0, 0, 60, 120, 142, 202)))
            wraps = rng.random() < faults.wrap
            entries = COUNTER_MODULUS - rng.randint(2000, 8000) if wraps else rng.randint(0, 3 * 10**9)
            exits = rng.randint(0, 2 * 10**9)
            step = -1 if rng.random() < faults.count_down else 1
            reset_round = rng.randrange(1, rounds) if rng.random() < faults.reset else None
            padded = rng.random() < faults.padded
            busy = rng.uniform(0.3, 2.0)
            for r in range(rounds):
                at = start + offset + r * READING_INTERVAL
                if r:
                    hour = at.hour
                    rush = 3.0 if hour in (8, 12, 20) else 1.0
                    entries = (entries + step * int(rng.randint(50, 400) * busy * rush)) % COUNTER_MODULUS
                    exits = (exits + step * int(rng.randint(40, 350) * busy * rush)) % COUNTER_MODULUS
                if r == reset_round:
                    entries, exits = rng.randint(0, 50), rng.randint(0, 50)
                spaces = rng.random() < faults.trailing_spaces
                fields = {"C/A": ca, "UNIT": unit, "SCP": scp, "STATION": name, "LINENAME": line,
                          "DIVISION": division, "DATE": at.strftime("%m/%d/%Y"), "TIME": at.strftime("%H:%M:%S"),
                          "DESC": "REGULAR", "ENTRIES": _value(entries, padded, spaces),
                          "EXITS": _value(exits, padded, spaces)}
                if spaces:
                    fields = {k: v if v.endswith(" ") else f"{v} " for k, v in fields.items()}
                reading = Reading(fields, at)
                late = r + faults.late_by < rounds and rng.random() < faults.late
                per_round[r + faults.late_by if late else r].append(reading)
                if rng.random() < faults.recovr_duplicate:
                    copy = dict(fields, DESC="RECOVR AUD",
                                ENTRIES=_value(entries + rng.choice((0, 0, 1, 3)), padded, spaces))
                    per_round[r].append(Reading(copy, at))
    published: list[Reading] = []
    for readings in per_round:
        # Within a round in event-time order; the late ones of earlier rounds come after (as held back).
        published += sorted(readings, key=lambda x: x.at)
    return published


def run_generated(bootstrap: str, topic: str = TOPIC, stations: int = 10, turnstiles_per_station: int = 4,
                  days: int = 7, seed: int = 0, speedup: float | None = None,
                  producer_config: dict | None = None) -> ProduceReport:
    return publish(generate_week(stations, turnstiles_per_station, days, seed=seed), bootstrap, topic, speedup,
                   producer_config)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--speedup", type=float,
                        help="seconds of event time per second (1440: a day a minute); default as fast as possible")
    parser.add_argument("--source", default=str(SAMPLE_DIR), help="turnstile file or folder to replay")
    generated = parser.add_argument_group("generated week instead of the files")
    generated.add_argument("--generate", action="store_true")
    generated.add_argument("--stations", type=int, default=10)
    generated.add_argument("--turnstiles-per-station", type=int, default=4)
    generated.add_argument("--days", type=int, default=7)
    generated.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        if args.generate:
            report = run_generated(args.bootstrap, args.topic, args.stations, args.turnstiles_per_station,
                                   args.days, args.seed, args.speedup)
        else:
            report = run_replay(args.bootstrap, args.topic, args.source, args.speedup)
    except DeliveryFailed as failure:
        print(json.dumps(failure.report.as_dict()))
        raise
    print(json.dumps(report.as_dict()))
    return report.as_dict()


if __name__ == "__main__":
    try:
        main()
    except (DeliveryFailed, TopicMissing, FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        sys.exit(1)
