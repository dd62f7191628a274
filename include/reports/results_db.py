"""The Reports page's queries against the results database, over any DB-API connection of MySQL's
``%s`` parameter style (the page gets one from the ``mysql_results`` connection's MySqlHook, the
tests from PyMySQL). A table that does not exist yet (its pipeline never ran) reads as no rows."""
from __future__ import annotations

from contextlib import closing
from typing import Any

from include.reports.energy import REGRESSION_RUNS_TABLE

ER_NO_SUCH_TABLE = 1146  # MySQL/MariaDB error number of "Table ... doesn't exist"


def _is_missing_table(exc: Exception) -> bool:
    return bool(exc.args) and exc.args[0] == ER_NO_SUCH_TABLE


def _select(conn, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows as column -> value mappings; [] when the table does not exist."""
    try:
        with closing(conn.cursor()) as cur:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    except Exception as exc:  # the driver's ProgrammingError: PyMySQL and MySQLdb have their own classes
        if _is_missing_table(exc):
            return []
        raise


def daily_aqi_rows(conn, days: int = 90) -> list[tuple]:
    """``(station, day, aqi)`` of the last ``days`` days the data has (counted back from its newest day)."""
    rows = _select(conn, "SELECT station, day, aqi FROM aq_daily_aqi "
                         "WHERE day > (SELECT MAX(day) FROM aq_daily_aqi) - INTERVAL %s DAY ORDER BY station, day",
                   (days,))
    return [(r["station"], r["day"], r["aqi"]) for r in rows]


def latest_access_log_day(conn, top_n: int = 10) -> tuple[dict, list[tuple], list[tuple]] | None:
    """The newest day's summary row, its top clients ``(rank_no, client_ip, requests)`` and its 4xx
    responses per status ``(status, responses)``; None when no day was analysed yet. The job writes
    the summary row last, so a day with a summary has all its details."""
    summary = _select(conn, "SELECT * FROM access_log_daily_summary ORDER BY log_date DESC LIMIT 1")
    if not summary:
        return None
    day = summary[0]["log_date"]
    clients = _select(conn, "SELECT rank_no, client_ip, requests FROM access_log_top_clients "
                            "WHERE log_date = %s ORDER BY rank_no LIMIT %s", (day, top_n))
    errors = _select(conn, "SELECT status, responses FROM access_log_4xx_by_status WHERE log_date = %s ORDER BY status",
                     (day,))
    return (summary[0], [(r["rank_no"], r["client_ip"], r["requests"]) for r in clients],
            [(r["status"], r["responses"]) for r in errors])


def energy_regression_runs(conn, limit: int = 30) -> list[dict[str, Any]]:
    """The newest runs' rows of the energy regression metrics table (every column it has)."""
    return _select(conn, f"SELECT * FROM `{REGRESSION_RUNS_TABLE}` ORDER BY run_date DESC LIMIT %s", (limit,))
