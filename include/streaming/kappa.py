"""The Kappa replay's checks and its switch, outside Spark (the DAG's Python tasks).

* :func:`live_table`: which table the view ``metric_minute_aggregates_current`` shows now (job B's
  ``metric_minute_aggregates`` until a replay switched it).
* :func:`compare`: the replayed table against the live one over the minutes both cover - from the
  later of their first minutes (the first minute of a log cut by retention is excluded: retention
  deletes whole segments, which can cut a minute) to ``settle_minutes`` before the earlier of
  their last minutes (the live job may not have processed the newest records yet, and the replay
  read up to the end offsets of its start): per (minute, host, metric) the event counts must be
  equal and the sums equal within ``tolerance`` (relative), and neither side may have a window the
  other lacks in that range. Raises :class:`ReplayMismatch` with the first differences.
* :func:`switch_view`: ``CREATE OR REPLACE VIEW metric_minute_aggregates_current AS SELECT * FROM
  <table>``, one statement, so a reader sees the old version or the new one, never a mix. The old
  table stays until someone drops it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from spark_apps.streaming.metrics.versions import VIEW, table_name

LIVE_TABLE = table_name(1)
_TABLE = re.compile(r"^metric_minute_aggregates(_v[0-9]+)?$")


class ReplayMismatch(RuntimeError):
    pass


def _check(table: str) -> str:
    if not _TABLE.match(table):
        raise ValueError(f"not an aggregates table of the platform: {table!r}")
    return table


def _rows(conn, sql: str, params=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def live_table(conn) -> str:
    """The table the view shows, or job B's table when there is no view yet."""
    rows = _rows(conn, "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() "
                       "AND TABLE_NAME = %s", (VIEW,))
    if not rows:
        return LIVE_TABLE
    found = re.findall(r"`?(metric_minute_aggregates(?:_v[0-9]+)?)`?", rows[0][0])
    if not found:
        raise RuntimeError(f"{VIEW} shows neither version of the aggregates: {rows[0][0][:200]}")
    return found[-1]


def _table_exists(conn, table: str) -> bool:
    return bool(_rows(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
                            "AND TABLE_TYPE = 'BASE TABLE'", (table,)))


def _span(conn, table: str) -> tuple[datetime | None, datetime | None]:
    return _rows(conn, f"SELECT MIN(window_start), MAX(window_start) FROM `{_check(table)}`")[0]


@dataclass(frozen=True)
class Comparison:
    live: str
    replayed: str
    first: datetime | None
    last: datetime | None
    windows: int
    events: int

    def line(self) -> str:
        if self.first is None:
            return f"{self.replayed} vs {self.live}: no overlapping minutes to compare"
        return (f"{self.replayed} vs {self.live}: {self.windows} windows, {self.events} events equal "
                f"from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M}")


def compare(conn, replayed: str, live: str, settle_minutes: int = 2, tolerance: float = 1e-9) -> Comparison:
    _check(replayed), _check(live)
    if not _table_exists(conn, live):
        return Comparison(live, replayed, None, None, 0, 0)
    (live_first, live_last), (new_first, new_last) = _span(conn, live), _span(conn, replayed)
    if None in (live_first, live_last, new_first, new_last):
        return Comparison(live, replayed, None, None, 0, 0)
    first = max(live_first, new_first)
    if live_first < new_first:
        first += timedelta(minutes=1)  # the replay's first minute may be cut by retention
    last = min(live_last, new_last) - timedelta(minutes=settle_minutes)
    if first > last:
        return Comparison(live, replayed, None, None, 0, 0)
    sql = "SELECT window_start, host, metric_name, `count`, `sum` FROM `{}` WHERE window_start BETWEEN %s AND %s"
    old = {r[:3]: r[3:] for r in _rows(conn, sql.format(live), (first, last))}
    new = {r[:3]: r[3:] for r in _rows(conn, sql.format(replayed), (first, last))}
    problems = [f"{key}: only in {live}" for key in sorted(old.keys() - new.keys())]
    problems += [f"{key}: only in {replayed}" for key in sorted(new.keys() - old.keys())]
    for key in sorted(old.keys() & new.keys()):
        (old_count, old_sum), (new_count, new_sum) = old[key], new[key]
        if old_count != new_count or abs(old_sum - new_sum) > tolerance * max(1.0, abs(old_sum)):
            problems.append(f"{key}: count/sum {old_count}/{old_sum} in {live}, {new_count}/{new_sum} in {replayed}")
    if problems:
        raise ReplayMismatch(f"{len(problems)} windows differ between {live} and {replayed} from {first} to {last} "
                             f"(not switched): " + "; ".join(map(str, problems[:5])))
    return Comparison(live, replayed, first, last, len(new), sum(c for c, _ in new.values()))


def switch_view(conn, table: str) -> str:
    """Point the view at ``table`` in one statement; returns the table it showed before."""
    _check(table)
    if not _table_exists(conn, table):
        raise RuntimeError(f"{table} does not exist: replay first")
    before = live_table(conn)
    with conn.cursor() as cur:
        cur.execute(f"CREATE OR REPLACE VIEW `{VIEW}` AS SELECT * FROM `{table}`")
    conn.commit()
    return before
