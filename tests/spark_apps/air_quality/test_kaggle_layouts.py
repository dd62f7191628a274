"""Kaggle's "Air Quality Data in India (2015-2020)" files: layouts recognised by their header,
mapped onto the canonical schema, daily files into the daily dataset, the AQI comparison.

The hand-made files hold rows of the real data set (station AP001 in November 2017, Delhi and
Ahmedabad in January 2015), some as a spreadsheet tool re-saves them: a UTF-8 BOM, CRLF line
endings, DD-MM-YYYY dates, empty cells."""
from __future__ import annotations

import json
import logging
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from include.generators.air_quality import write_kaggle_files
from spark_apps.air_quality import jobs, run_jobs
from spark_apps.air_quality.convert import convert
from spark_apps.air_quality.reader import KAGGLE_STATIONS, plan_file

HEADER = "PM2.5,PM10,NO,NO2,NOx,NH3,CO,SO2,O3,Benzene,Toluene,Xylene,AQI,AQI_Bucket"
BOM = "\ufeff"


def resaved(*lines: str) -> str:
    """As a spreadsheet tool saves a file again: BOM, CRLF."""
    return BOM + "".join(line + "\r\n" for line in lines)


STATIONS_CSV = resaved(
    "StationId,StationName,City,State,Status",
    'AP001,"Secretariat, Amaravati - APPCB",Amaravati,Andhra Pradesh,Active',
    'DL001,"Alipur, Delhi - DPCC",Delhi,Delhi,',
)
STATION_HOUR_CSV = resaved(
    f"StationId,Datetime,{HEADER}",
    "AP001,24-11-2017 17:00,60.5,98,2.35,30.8,18.25,8.5,0.1,11.85,126.4,0.1,6.1,0.1,,",  # line 2
    "AP001,24-11-2017 18:00,65.5,,1.6,,,,0.1,,117.1,,,,,",  # 3: empty cells
    "DL001,24-11-2017 17:00,,,,,,,,,,,,,184,Moderate",  # 4: the file's AQI only
    "XX999,24-11-2017 17:00,10,,,,,,,,,,,,,",  # 5: not in stations.csv: named by its id
    ",24-11-2017 18:00,10,,,,,,,,,,,,,",  # 6: no StationId
    "AP001,31-11-2017 19:00,1,,,,,,,,,,,,,",  # 7: no such day
    "AP001,24-11-2017 20:00,abc,,,,,,,,,,,,,",  # 8
)
CITY_HOUR_CSV = (  # as Kaggle ships it: no BOM, LF, ISO times
    f"City,Datetime,{HEADER}\n"
    "Ahmedabad,2015-01-01 01:00:00,,,1,40.01,36.37,,1,122.07,,0,0,0,,\n"
    "Ahmedabad,2015-01-01 02:00:00,,,0.02,27.75,19.73,,0.02,85.9,,0,0,0,,\n"
)
STATION_DAY_CSV = resaved(
    f"StationId,Date,{HEADER}",
    "AP001,24-11-2017,71.36,115.75,1.75,20.65,12.4,12.19,0.1,10.76,109.26,0.17,5.92,0.1,,",
    "AP001,25-11-2017,81.4,124.5,1.44,20.5,12.08,10.72,0.12,15.24,127.09,0.2,6.5,0.06,184,Moderate",
    "AP001,26-11-2017,78.32,129.06,1.26,26,14.85,10.28,0.14,26.96,117.44,0.22,7.95,0.08,197,Moderate",
)
CITY_DAY_CSV = (
    f"City,Date,{HEADER}\n"
    "Delhi,2015-01-01,313.22,607.98,69.16,36.39,110.59,33.85,15.2,9.25,41.68,14.36,24.86,9.84,472,Severe\n"
    "Delhi,2015-01-02,186.18,269.55,62.09,32.87,88.14,31.83,9.54,6.65,29.97,10.55,20.09,4.29,454,Severe\n"
)
FILES = {"stations.csv": STATIONS_CSV, "station_hour.csv": STATION_HOUR_CSV, "city_hour.csv": CITY_HOUR_CSV,
         "station_day.csv": STATION_DAY_CSV, "city_day.csv": CITY_DAY_CSV}
AMARAVATI = "Secretariat, Amaravati - APPCB"


@pytest.mark.parametrize("name, layout, daily", [
    ("station_hour.csv", "kaggle_station_hour", False), ("city_hour.csv", "kaggle_city_hour", False),
    ("station_day.csv", "kaggle_station_day", True), ("city_day.csv", "kaggle_city_day", True),
])
def test_each_layout_is_recognised_by_its_header(name, layout, daily):
    plan = plan_file(f"file:/raw/{name}", FILES[name])
    assert (plan.layout, plan.daily, plan.header_line, plan.problem, plan.station) == (layout, daily, 1, None, None)
    assert plan.columns[:3] == ["station_id" if name.startswith("station") else "city", "from_ts", "pm25"]
    assert plan.columns[-6:] == ["ozone", "benzene", "toluene", "xylene", "source_aqi", "source_aqi_bucket"]


def test_the_stations_list_is_read_as_a_lookup():
    plan = plan_file("file:/raw/stations.csv", STATIONS_CSV)
    assert (plan.layout, plan.problem) == (KAGGLE_STATIONS, None)
    assert plan.stations == {"AP001": (AMARAVATI, "Amaravati"), "DL001": ("Alipur, Delhi - DPCC", "Delhi")}
    # A CPCB export with a BOM is still found by its "From Date" header.
    cpcb = plan_file("file:/raw/Delhi__ITO.csv", BOM + "From Date,To Date,PM10\r\n01-01-2023 00:00,01-01-2023 01:00,4\r\n")
    assert (cpcb.layout, cpcb.header_line, cpcb.station, cpcb.problem) == ("cpcb", 1, "ITO", None)


def _write(raw: Path, names) -> None:
    raw.mkdir(exist_ok=True)
    for name in names:
        (raw / name).write_text(FILES[name], encoding="utf-8", newline="")


def test_kaggle_files_convert_into_the_hourly_and_daily_datasets(spark, tmp_path):
    raw, hourly_out, daily_out, quarantine = tmp_path / "raw", tmp_path / "hourly", tmp_path / "daily", tmp_path / "q"
    _write(raw, FILES)
    result = convert(spark, raw.as_uri(), hourly_out.as_uri(), quarantine.as_uri(), max_bad_share=0.5,
                     daily_uri=daily_out.as_uri())
    # hourly: 4 good station rows + 2 city rows; daily: 3 + 2; lines 6, 7, 8 of station_hour.csv bad
    assert (result.files, result.good_rows, result.daily_rows, result.bad_rows, result.duplicate_rows) == (5, 11, 5, 3, 0)
    assert result.reasons == {"no station": 1, "unparseable Datetime": 1, "non-numeric pm25": 1}
    bad = [json.loads(line) for f in (quarantine / "rows").glob("*.json") for line in f.read_text().splitlines()]
    assert sorted((b["line_number"], b["reason"]) for b in bad) == [
        (6, "no station: StationId or City missing"),
        (7, "unparseable Datetime: '31-11-2017 19:00'"),
        (8, "non-numeric pm25: 'abc'"),
    ]

    hourly = spark.read.parquet(hourly_out.as_uri())
    assert sorted((r.station, r.from_ts, r.city, r.pm25, r.pm10, r.no2, r.ozone, r.source_aqi, r.source_aqi_bucket,
                   r.to_ts, r.month, Path(r.source_file).name) for r in hourly.collect()) == [
        ("Ahmedabad", datetime(2015, 1, 1, 1), "Ahmedabad", None, None, 40.01, None, None, None, None, "2015-01",
         "city_hour.csv"),
        ("Ahmedabad", datetime(2015, 1, 1, 2), "Ahmedabad", None, None, 27.75, None, None, None, None, "2015-01",
         "city_hour.csv"),
        ("Alipur, Delhi - DPCC", datetime(2017, 11, 24, 17), "Delhi", None, None, None, None, 184.0, "Moderate", None,
         "2017-11", "station_hour.csv"),
        (AMARAVATI, datetime(2017, 11, 24, 17), "Amaravati", 60.5, 98.0, 30.8, 126.4, None, None, None, "2017-11",
         "station_hour.csv"),
        (AMARAVATI, datetime(2017, 11, 24, 18), "Amaravati", 65.5, None, None, 117.1, None, None, None, "2017-11",
         "station_hour.csv"),
        ("XX999", datetime(2017, 11, 24, 17), None, 10.0, None, None, None, None, None, None, "2017-11",
         "station_hour.csv"),
    ]
    daily = spark.read.parquet(daily_out.as_uri())
    assert [(r.station, r.day, r.city, r.pm25, r.co, r.source_aqi, r.source_aqi_bucket) for r in
            daily.orderBy("station", "day").collect()] == [
        ("Delhi", date(2015, 1, 1), "Delhi", 313.22, 15.2, 472.0, "Severe"),
        ("Delhi", date(2015, 1, 2), "Delhi", 186.18, 9.54, 454.0, "Severe"),
        (AMARAVATI, date(2017, 11, 24), "Amaravati", 71.36, 0.1, None, None),
        (AMARAVATI, date(2017, 11, 25), "Amaravati", 81.4, 0.12, 184.0, "Moderate"),
        (AMARAVATI, date(2017, 11, 26), "Amaravati", 78.32, 0.14, 197.0, "Moderate"),
    ]

    # A rerun without city_day.csv: its days leave the daily dataset, nothing else changes.
    (raw / "city_day.csv").unlink()
    again = convert(spark, raw.as_uri(), hourly_out.as_uri(), quarantine.as_uri(), max_bad_share=0.5,
                    daily_uri=daily_out.as_uri())
    assert (again.good_rows, again.daily_rows, again.bad_rows) == (9, 3, 3)
    assert spark.read.parquet(daily_out.as_uri()).count() == 3 and spark.read.parquet(hourly_out.as_uri()).count() == 6


def test_daily_rows_without_a_daily_dataset_fail_before_anything_is_written(spark, tmp_path):
    raw = tmp_path / "raw"
    _write(raw, ["station_day.csv"])
    with pytest.raises(ValueError, match="3 rows of daily files"):
        convert(spark, raw.as_uri(), (tmp_path / "hourly").as_uri(), (tmp_path / "q").as_uri())
    assert not (tmp_path / "hourly").exists()


def test_the_platform_aqi_against_the_files_aqi(spark, tmp_path):
    raw, hourly_out, daily_out = tmp_path / "raw", (tmp_path / "hourly").as_uri(), (tmp_path / "daily").as_uri()
    _write(raw, FILES)
    convert(spark, raw.as_uri(), hourly_out, (tmp_path / "q").as_uri(), max_bad_share=0.5, daily_uri=daily_out)
    hourly, daily = spark.read.parquet(hourly_out), run_jobs.read_daily(spark, daily_out)
    # Two hours of AP001 on 24-11 are too few for an hourly AQI, so every day's AQI is the daily file's:
    # AP001 24-11: PM2.5 71.36 -> 100 + 100 * 11.36 / 30 = 137.87 -> 138 (no AQI in the file: not compared)
    # AP001 25-11: PM2.5 81.4 -> 171.33, PM10 124.5 -> 116.33: 171 against 184 (-13), both Moderate
    # AP001 26-11: PM2.5 78.32 -> 161.07, PM10 129.06 -> 119.37: 161 against 197 (-36), both Moderate
    # Delhi 01-01: PM10 607.98 -> 400 + 100 * 177.98 / 80 = 622 -> capped 500, Severe: against 472 (+28)
    # Delhi 01-02: PM2.5 186.18 -> 300 + 100 * 66.18 / 130 = 350.9 -> 351 Very Poor: against 454 Severe (-103)
    compared = [(r.station, r.rank_no, r.day, r.basis, r.aqi, r.source_aqi, r.difference, r.category,
                 r.source_category, r.days_compared, r.agreement_share, r.category_agreement_share,
                 r.mean_abs_difference)
                for r in jobs.aqi_vs_source_df(hourly, daily, n=10).orderBy("station", "rank_no").collect()]
    assert compared == [
        ("Delhi", 1, date(2015, 1, 2), "daily", 351, 454, -103, "Very Poor", "Severe", 2, 0.0, 0.5, 65.5),
        ("Delhi", 2, date(2015, 1, 1), "daily", 500, 472, 28, "Severe", "Severe", 2, 0.0, 0.5, 65.5),
        (AMARAVATI, 1, date(2017, 11, 26), "daily", 161, 197, -36, "Moderate", "Moderate", 2, 0.0, 1.0, 24.5),
        (AMARAVATI, 2, date(2017, 11, 25), "daily", 171, 184, -13, "Moderate", "Moderate", 2, 0.0, 1.0, 24.5),
    ]


def test_generated_daily_files_reproduce_their_aqi_and_hourly_jobs_skip_them(spark, fresh_results_db, tmp_path,
                                                                               caplog):
    """The generator states the AQI of CPCB's method for a daily file (computed with numpy): the
    platform's daily AQI (Spark) gives the same on every day. Hourly jobs log the daily input out."""
    generated = tmp_path / "generated"
    write_kaggle_files(generated, stations=4, days=3, seed=9, resaved=True)
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("stations.csv", "station_day.csv", "city_day.csv"):
        shutil.copy(generated / name, raw / name)
    hourly_out, daily_out = (tmp_path / "hourly").as_uri(), (tmp_path / "daily").as_uri()
    result = convert(spark, raw.as_uri(), hourly_out, (tmp_path / "q").as_uri(), daily_uri=daily_out)
    # 4 stations and their 2 cities (Bengaluru, Delhi) x 3 days, no bad rows
    assert (result.good_rows, result.daily_rows, result.bad_rows) == (18, 18, 0)

    selected = [jobs.JOBS[name] for name in ("daily_pm_df", "daily_aqi_df", "aqi_vs_source_df")]
    with caplog.at_level(logging.INFO, logger="spark_apps.air_quality.run_jobs"):
        written = run_jobs.run_jobs(spark, hourly_out, selected, fresh_results_db, top_n=3, daily_uri=daily_out)
    assert "18 station-days of daily files are not in the results of daily_pm_df" in caplog.text
    assert written["daily_pm_df"] == 0 and written["daily_aqi_df"] > 0
    conn = fresh_results_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT station, COUNT(*), MIN(agreement_share), MAX(mean_abs_difference), MAX(days_compared) "
                        "FROM aq_aqi_vs_source GROUP BY station ORDER BY station")
            per_station = cur.fetchall()
            cur.execute("SELECT DISTINCT basis FROM aq_daily_aqi")
            bases = cur.fetchall()
    finally:
        conn.close()
    assert len(per_station) == 6 and bases == (("daily",),)
    assert all(row[2] == 1.0 and row[3] == 0.0 and row[1] == row[4] for row in per_station), per_station
