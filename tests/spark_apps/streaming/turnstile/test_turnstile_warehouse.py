"""The daily warehouse model from hand-made window files (as the streaming job names and writes them):
station-day sums, busiest stations, hourly profile by weekday; a rerun replaces, a later file with a
correction updates the day instead of adding to it."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from spark_apps.streaming.turnstile import job, warehouse

pytestmark = [pytest.mark.spark]


def window(station: str, line: str, start: datetime, entries: int, exits: int, intervals: int = 1) -> dict:
    end = start.replace(hour=start.hour + 4) if start.hour < 20 else start.replace(day=start.day + 1, hour=0)
    return {"station": station, "line": line, "window_start": start, "window_end": end,
            "service_date": start.date(), "division": "BMT", "entries": entries, "exits": exits,
            "intervals": intervals, "entries_dropped": 0, "exits_dropped": 0, "gap_dropped": 0}


def write(tmp_path, batch_id: int, rows: list[dict]) -> None:
    root = (tmp_path / "lake").as_uri() + "/" + job.WINDOWS_SUBDIR
    by_start: dict = {}
    for row in rows:
        by_start.setdefault(row["window_start"], []).append(row)
    for start, group in by_start.items():
        path = tmp_path / "lake" / job.window_file_uri(root, start, batch_id).split("/lake/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(job.window_csv(group, batch_id))


def table(db, name: str) -> list[tuple]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{name}` ORDER BY 1, 2, 3")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def test_station_days_busiest_and_profile_replace_and_correct(spark, fresh_results_db, tmp_path):
    saturday, sunday = datetime(2015, 6, 20), datetime(2015, 6, 21)
    # Batch 0: two windows of A, one of B on Saturday, one of A on Sunday.
    write(tmp_path, 0, [window("A", "NQR", saturday.replace(hour=4), 100, 50),
                        window("B", "456", saturday.replace(hour=4), 30, 300),
                        window("A", "NQR", sunday.replace(hour=8), 7, 9)])
    # Batch 1 adds to A's 04:00 window and opens its 08:00 one.
    write(tmp_path, 1, [window("A", "NQR", saturday.replace(hour=4), 20, 5),
                        window("A", "NQR", saturday.replace(hour=8), 200, 100)])
    lake = (tmp_path / "lake").as_uri()
    db = fresh_results_db
    for _ in range(2):  # a rerun replaces
        warehouse.run(spark, lake, db)
        # A Saturday: 100+20+200 entries, 50+5+100 exits over 3 intervals; B: 30 / 300.
        assert table(db, warehouse.STATION_DAY_TABLE) == [
            (date(2015, 6, 20), "A", "NQR", "BMT", 320, 155, 3, 0),
            (date(2015, 6, 20), "B", "456", "BMT", 30, 300, 1, 0),
            (date(2015, 6, 21), "A", "NQR", "BMT", 7, 9, 1, 0)]
    # Busiest by entries + exits: A 475 before B 330 on Saturday.
    assert table(db, warehouse.BUSIEST_TABLE) == [
        (date(2015, 6, 20), 1, "A", "NQR", 320, 155, 475), (date(2015, 6, 20), 2, "B", "456", 30, 300, 330),
        (date(2015, 6, 21), 1, "A", "NQR", 7, 9, 16)]
    assert table(db, warehouse.PROFILE_TABLE) == [
        (date(2015, 6, 20), "Saturday", 4, 150, 355, 2), (date(2015, 6, 20), "Saturday", 8, 200, 100, 1),
        (date(2015, 6, 21), "Sunday", 8, 7, 9, 1)]

    # A late correction (batch 2: a retraction of 50 entries in A's 08:00 window) updates Saturday
    # when only that day is rebuilt; Sunday stays.
    write(tmp_path, 2, [window("A", "NQR", saturday.replace(hour=8), -50, 0, intervals=0)])
    warehouse.run(spark, lake, db, service_date="2015-06-20")
    assert table(db, warehouse.STATION_DAY_TABLE)[0] == (date(2015, 6, 20), "A", "NQR", "BMT", 270, 155, 3, 0)
    assert len(table(db, warehouse.STATION_DAY_TABLE)) == 3
