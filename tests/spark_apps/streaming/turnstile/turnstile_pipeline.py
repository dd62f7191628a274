"""The turnstile pipeline against the real broker and MariaDB: a test's topics, lake and checkpoints,
the expected windows computed independently (plain Python over the CSV, not the job's code), and
readers of what the job wrote (MySQL rows, the lake's gzip CSV files)."""
from __future__ import annotations

import csv
import gzip
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from include.producers.turnstile import SAMPLE_DIR
from spark_apps.streaming.turnstile import job
from tests.spark_apps.streaming.waiting import wait_for  # noqa: F401 (re-exported to the tests)

QUERY_TIMEOUT_S = 300
SAMPLE = SAMPLE_DIR / "turnstile-test.csv"




def expected_windows(rows: list[dict], hours: int = 4) -> dict:
    """(station, line, window start) -> (entries, exits, intervals, entries dropped, exits dropped,
    gap dropped) by the rules, written out once more here: per turnstile in time order, RECOVR AUD at
    the time of a REGULAR reading dropped, |difference| kept below 10,000, nothing across 24 h or
    more, counted in the window of the later reading."""
    by_turnstile = defaultdict(dict)
    for row in rows:
        v = {k.strip(): x.strip() for k, x in row.items()}
        at = datetime.strptime(f"{v['DATE']} {v['TIME']}", "%m/%d/%Y %H:%M:%S")
        key = (v["C/A"], v["UNIT"], v["SCP"])
        if at in by_turnstile[key] and by_turnstile[key][at]["DESC"] == "REGULAR":
            continue
        by_turnstile[key][at] = v
    totals = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for readings in by_turnstile.values():
        times = sorted(readings)
        for before, after in zip(times, times[1:]):
            a, b = readings[before], readings[after]
            start = after.replace(hour=after.hour // hours * hours, minute=0, second=0)
            total = totals[(b["STATION"], b["LINENAME"], start)]
            if after - before > timedelta(hours=24):
                total[5] += 1
                continue
            total[2] += 1
            for i, name in ((0, "ENTRIES"), (1, "EXITS")):
                delta = abs(int(b[name]) - int(a[name]))
                if delta < 10_000:
                    total[i] += delta
                else:
                    total[3 + i] += 1
    return {key: tuple(value) for key, value in totals.items()}


def sample_rows() -> list[dict]:
    with SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


class TurnstilePipeline:
    def __init__(self, spark, broker, db, tmp_path):
        self.spark, self.broker, self.db = spark, broker, db
        self.source = broker.create_topic(partitions=3)
        self.dead_letters = broker.create_topic(partitions=1)
        self.late = broker.create_topic(partitions=1)
        self.lake_path = tmp_path / "lake"
        self.lake = self.lake_path.as_uri()
        self.checkpoint = f"file://{tmp_path}/checkpoints/turnstile"

    def start(self, **options):
        options = {"available_now": True, **options}
        return job.start_queries(self.spark, self.broker.bootstrap, self.lake, self.checkpoint, self.db,
                                 self.source, self.dead_letters, self.late, **options)

    @staticmethod
    def stop(queries) -> None:
        for query in queries:
            deadline = time.monotonic() + 60
            while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
                time.sleep(0.1)
            if query.isActive:
                query.stop()

    def run_available_now(self, **options) -> None:
        queries = self.start(**options)
        try:
            for query in queries:
                assert query.awaitTermination(QUERY_TIMEOUT_S), f"{query.name} did not finish"
        finally:
            self.stop(queries)
        for query in queries:
            assert query.exception() is None, query.exception()

    # --- what is there ------------------------------------------------------------------

    def _select(self, sql: str) -> list[dict]:
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(sql)
                except Exception as error:
                    if "doesn't exist" in str(error):
                        return []
                    raise
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def windows_in_mysql(self) -> dict:
        rows = self._select(f"SELECT * FROM `{job.RIDERSHIP_TABLE}`")
        result = {}
        for r in rows:
            assert r["window_end"] - r["window_start"] == timedelta(hours=4)
            assert r["service_date"] == r["window_start"].date()
            result[(r["station"], r["line"], r["window_start"])] = tuple(
                int(r[name]) for name in ("entries", "exits", "intervals", "entries_dropped", "exits_dropped",
                                          "gap_dropped"))
        return result

    def quality(self) -> list[dict]:
        return self._select(f"SELECT * FROM `{job.QUALITY_TABLE}`")

    def window_files(self) -> list[Path]:
        return sorted((self.lake_path / job.WINDOWS_SUBDIR).glob("service_date=*/window=*_batch=*.csv.gz"))

    def windows_in_lake(self) -> dict:
        """The files' rows summed per window (each file: one window, one batch)."""
        totals = defaultdict(lambda: [0] * 6)
        for path in self.window_files():
            with gzip.open(path, "rt", newline="") as handle:
                rows = list(csv.DictReader(handle))
            window, batch = path.name.removesuffix(".csv.gz").split("_batch=")
            assert path.parent.name == f"service_date={rows[0]['service_date']}"
            for row in rows:
                start = datetime.strptime(row["window_start"], "%Y-%m-%d %H:%M:%S")
                assert window == f"window={start:%Y%m%dT%H%M}" and row["batch_id"] == batch
                total = totals[(row["station"], row["line"], start)]
                for i, name in enumerate(("entries", "exits", "intervals", "entries_dropped", "exits_dropped",
                                          "gap_dropped")):
                    total[i] += int(row[name])
        return {key: tuple(value) for key, value in totals.items() if any(value)}

    def letters(self, topic: str) -> list:
        return self.broker.consume_all(topic, partitions=1)
