"""The eleven analyses on tiny hand-made frames; expected values worked out by hand."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.air_quality import jobs
from spark_apps.air_quality.schema import DAILY_SCHEMA, MEASURE_COLUMNS, POLLUTANT_COLUMNS

HOURLY_SCHEMA = T.StructType(
    [
        T.StructField("station", T.StringType()),
        T.StructField("from_ts", T.TimestampNTZType()),
        *[T.StructField(c, T.DoubleType()) for c in MEASURE_COLUMNS],
    ]
)


def hourly(spark, records):
    """records: (station, datetime, {measure: value}) -> a frame in the dataset's shape."""
    rows = [(s, ts, *[float(v[c]) if v.get(c) is not None else None for c in MEASURE_COLUMNS]) for s, ts, v in records]
    return spark.createDataFrame(rows, HOURLY_SCHEMA)


def hours(start: datetime, n: int):
    return [start + timedelta(hours=i) for i in range(n)]


def collect(df, *order):
    return [r.asDict() for r in df.orderBy(*order).collect()]


def test_avg_ws_averages_stations_per_hour(spark):
    h0, h1 = datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1)
    df = hourly(spark, [("A", h0, {"ws": 1}), ("B", h0, {"ws": 3}), ("A", h1, {"ws": 4}), ("B", h1, {})])
    # 00:00 -> (1 + 3) / 2 = 2; 01:00 -> only A's 4 counts (missing is not zero)
    assert collect(jobs.avg_ws_df(df), "from_date") == [
        {"from_date": h0, "avg_ws": 2.0},
        {"from_date": h1, "avg_ws": 4.0},
    ]


def test_daily_pm_means_and_hours(spark):
    d = datetime(2024, 1, 1)
    df = hourly(spark, [
        ("A", d, {"pm25": 10, "pm10": 30}),
        ("A", d + timedelta(hours=1), {"pm25": 20}),
        ("A", d + timedelta(hours=2), {}),
        ("A", d + timedelta(days=1), {"pm25": 5}),
    ])
    # day 1: pm25 (10 + 20) / 2 = 15 over 2 hours, pm10 30 over 1 hour; day 2: pm25 5, no pm10
    assert collect(jobs.daily_pm_df(df), "day") == [
        {"station": "A", "day": date(2024, 1, 1), "pm25_mean": 15.0, "pm10_mean": 30.0, "pm25_hours": 2, "pm10_hours": 1},
        {"station": "A", "day": date(2024, 1, 2), "pm25_mean": 5.0, "pm10_mean": None, "pm25_hours": 1, "pm10_hours": 0},
    ]


def test_exceedance_counts_hours_and_assessed_days(spark):
    day1, day2, day3 = datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)
    records = [("A", t, {"pm25": 70, "pm10": 100}) for t in hours(day1, 16)]  # mean 70 > 60; pm10 100 is not > 100
    records += [("A", t, {"pm25": 50}) for t in hours(day2, 16)]  # mean 50: assessed, not above
    records += [("A", t, {"pm25": 100}) for t in hours(day3, 15)]  # 15 h < 16: not assessed
    result = collect(jobs.exceedance_df(hourly(spark, records)), "station")
    # hours above 60: 16 (day 1) + 15 (day 3) = 31; days above: day 1 only, of 2 assessed
    assert result == [{
        "station": "A", "pm25_hours_above": 31, "pm10_hours_above": 0,
        "pm25_days_above": 1, "pm10_days_above": 0, "pm25_days_assessed": 2, "pm10_days_assessed": 1,
    }]


def test_monthly_stats_long_format(spark):
    df = hourly(spark, [
        ("A", datetime(2024, 1, 1, 0), {"pm25": 10, "so2": 5}),
        ("A", datetime(2024, 1, 2, 0), {"pm25": 20}),
        ("A", datetime(2024, 1, 3, 0), {"pm25": 60}),
        ("A", datetime(2024, 2, 1, 0), {"pm25": 7}),
    ])
    # Jan pm25: min 10, max 60, mean (10+20+60)/3 = 30; so2 one value 5; Feb pm25 7.
    # Pollutants without values (pm10, ...) get no row; met columns are not pollutants.
    assert collect(jobs.monthly_stats_df(df), "month", "pollutant") == [
        {"station": "A", "month": "2024-01", "pollutant": "pm25",
         "min_value": 10.0, "max_value": 60.0, "mean_value": 30.0, "n_values": 3},
        {"station": "A", "month": "2024-01", "pollutant": "so2",
         "min_value": 5.0, "max_value": 5.0, "mean_value": 5.0, "n_values": 1},
        {"station": "A", "month": "2024-02", "pollutant": "pm25",
         "min_value": 7.0, "max_value": 7.0, "mean_value": 7.0, "n_values": 1},
    ]


@pytest.mark.parametrize(
    "pollutant, concentration, expected",
    [
        ("pm25", 30.0, 50.0),  # top of Good
        ("pm25", 45.0, 75.0),  # 50 + 50 * (45 - 30) / 30
        ("pm10", 120.0, 100 + 100 * 20 / 150),  # Moderate 100-250 -> 113.33
        ("co", 1.5, 75.0),  # mg/m3: 50 + 50 * (1.5 - 1) / 1
        ("ozone", 180.0, 200 + 100 * 12 / 40),  # Poor 168-208 -> 230
        ("pm25", 300.0, 400 + 100 * 50 / 130),  # Severe: Very Poor slope 100/130 extended -> 438.46
        ("pm25", 5000.0, 500.0),  # capped
        ("nh3", -3.0, 0.0),  # negative average counts as 0
    ],
)
def test_sub_index_breakpoints(spark, pollutant, concentration, expected):
    df = spark.createDataFrame([(concentration,)], "c double")
    assert df.select(jobs.sub_index(pollutant, F.col("c"))).first()[0] == pytest.approx(expected)


def test_daily_aqi_rules(spark):
    # Days 2 and 3 are not next to day 1: day 1's last CO hours would otherwise give
    # the following day an 8-hour CO value (windows reach into the previous day).
    day1, day2, day3 = datetime(2024, 1, 1), datetime(2024, 1, 5), datetime(2024, 1, 9)
    # Day 1, 24 hours: PM2.5 45 -> 75, PM10 120 -> 113.33, NO2 20 -> 50*20/40 = 25,
    # CO 1.5 every hour -> max 8-h mean 1.5 -> 75. AQI = round(113.33) = 113, Moderate, PM10.
    records = [("A", t, {"pm25": 45, "pm10": 120, "no2": 20, "co": 1.5}) for t in hours(day1, 24)]
    # Day 2: only PM2.5 and NO2 -> two sub-indices, no AQI.
    records += [("A", t, {"pm25": 45, "no2": 20}) for t in hours(day2, 24)]
    # Day 3: three sub-indices but neither PM -> no AQI.
    records += [("A", t, {"no2": 20, "so2": 20, "nh3": 20}) for t in hours(day3, 24)]
    # Station B: PM2.5 on 15 hours only (< 16, no 24-h value) -> no AQI despite NO2/SO2/PM10.
    records += [("B", t, {"pm10": 80, "no2": 20, "so2": 20, "pm25": 10 if t.hour < 15 else None}) for t in hours(day1, 24)]
    result = collect(jobs.daily_aqi_df(hourly(spark, records)), "station", "day")
    # B day 1 still has PM10, NO2, SO2 -> valid: PM10 80 -> 50 + 50*30/50 = 80, NO2 25, SO2 25.
    assert [(r["station"], r["day"], r["aqi"], r["category"], r["responsible_pollutant"], r["n_pollutants"]) for r in result] == [
        ("A", date(2024, 1, 1), 113, "Moderate", "PM10", 4),
        ("B", date(2024, 1, 1), 80, "Satisfactory", "PM10", 3),
    ]
    assert result[0]["co_8h_max"] == pytest.approx(1.5) and result[0]["si_pm25"] == pytest.approx(75.0)
    assert result[1]["pm25_24h"] is None


def test_daily_aqi_eight_hour_max_needs_six_hours(spark):
    day = datetime(2024, 1, 1)
    base = {"pm25": 20, "pm10": 40}  # sub-indices 33.33 and 40
    # CO on hours 0-4 only (5 values): no 8-h window has 6 values -> CO missing -> 2 pollutants -> no AQI.
    records = [("A", t, {**base, "co": 3.0 if t.hour < 5 else None}) for t in hours(day, 24)]
    assert jobs.daily_aqi_df(hourly(spark, records)).count() == 0
    # Ozone 100 on hours 0-5 and 200 on hour 6. 8-h windows [t-7, t]: ending 06:00 or 07:00
    # -> 7 values, (600 + 200) / 7 = 114.29; ending 08:00 (01-08) -> 6 values, 700 / 6 = 116.67;
    # ending 09:00 -> 5 values, not enough. Max 116.67 -> si = 100 + 100 * 16.67 / 68 = 124.5
    records = [("A", t, {**base, "ozone": 100 if t.hour < 6 else (200 if t.hour == 6 else None)}) for t in hours(day, 24)]
    row = jobs.daily_aqi_df(hourly(spark, records)).first()
    assert row["ozone_8h_max"] == pytest.approx(700 / 6)
    assert (row["aqi"], row["category"], row["responsible_pollutant"]) == (125, "Moderate", "O3")


def daily_frame(spark, records):
    """records: (station, date, {pollutant: value}, source AQI, source bucket) -> DAILY_SCHEMA rows."""
    rows = [(s, d, None, *[float(v[p]) if v.get(p) is not None else None for p in POLLUTANT_COLUMNS],
             aqi, bucket, "station_day.csv") for s, d, v, aqi, bucket in records]
    return spark.createDataFrame(rows, DAILY_SCHEMA)


# Station A, 2024-01-01, 24 hours: AQI 113 Moderate from the hourly data (test_daily_aqi_rules).
A_DAY1_HOURS = [("A", t, {"pm25": 45, "pm10": 120, "no2": 20, "co": 1.5}) for t in hours(datetime(2024, 1, 1), 24)]


def test_daily_aqi_from_daily_files_uses_only_the_24_hour_pollutants(spark):
    daily = daily_frame(spark, [
        # PM2.5 45 -> 75, PM10 120 -> 113.33, NO2 20 -> 25: AQI 113 Moderate, PM10, 3 sub-indices.
        ("D", date(2024, 2, 1), {"pm25": 45, "pm10": 120, "no2": 20, "co": 30}, None, None),
        # PM2.5 and NO2 only; ozone's daily mean is no 8-hour maximum, so it gives no sub-index: no AQI.
        ("D", date(2024, 2, 2), {"pm25": 45, "no2": 20, "ozone": 500}, None, None),
        # three sub-indices but no PM: no AQI.
        ("E", date(2024, 2, 1), {"no2": 20, "so2": 20, "nh3": 20}, None, None),
        # A day the hourly data has too: the hourly AQI (113) stays, not this one's (PM2.5 500 -> 500).
        ("A", date(2024, 1, 1), {"pm25": 500, "pm10": 120, "no2": 20}, None, None),
    ])
    result = collect(jobs.daily_aqi_df(hourly(spark, A_DAY1_HOURS), daily), "station", "day")
    assert [(r["station"], r["day"], r["aqi"], r["category"], r["responsible_pollutant"], r["n_pollutants"],
             r["basis"]) for r in result] == [
        ("A", date(2024, 1, 1), 113, "Moderate", "PM10", 4, "hourly"),
        ("D", date(2024, 2, 1), 113, "Moderate", "PM10", 3, "daily"),
    ]
    assert (result[1]["co_8h_max"], result[1]["si_co"], result[1]["pm10_24h"]) == (None, None, 120.0)


def test_aqi_vs_source_agreement_difference_and_worst_days(spark):
    daily = daily_frame(spark, [
        # hourly AQI 113 against the file's 110.4 -> 110: +3, same category.
        ("A", date(2024, 1, 1), {"pm25": 500}, 110.4, "Moderate"),
        # 113 (PM10) against 113: the same.
        ("D", date(2024, 2, 1), {"pm25": 45, "pm10": 120, "no2": 20}, 113.0, "Moderate"),
        # PM2.5 90 -> 200, PM10 100 -> 100, NO2 40 -> 50: 200 Moderate against 260 Poor: -60.
        ("D", date(2024, 2, 3), {"pm25": 90, "pm10": 100, "no2": 40}, 260.0, "Poor"),
        # The file gives no AQI: not compared.
        ("D", date(2024, 2, 4), {"pm25": 10, "pm10": 20, "no2": 10}, None, None),
        # The platform gives none (two sub-indices): not compared.
        ("D", date(2024, 2, 2), {"pm25": 45, "no2": 20}, 90.0, "Satisfactory"),
    ])
    result = collect(jobs.aqi_vs_source_df(hourly(spark, A_DAY1_HOURS), daily, n=1), "station", "rank_no")
    assert result == [
        {"station": "A", "rank_no": 1, "day": date(2024, 1, 1), "basis": "hourly", "aqi": 113, "source_aqi": 110,
         "difference": 3, "category": "Moderate", "source_category": "Moderate", "days_compared": 1,
         "agreement_share": 0.0, "category_agreement_share": 1.0, "mean_abs_difference": 3.0},
        {"station": "D", "rank_no": 1, "day": date(2024, 2, 3), "basis": "daily", "aqi": 200, "source_aqi": 260,
         "difference": -60, "category": "Moderate", "source_category": "Poor", "days_compared": 2,
         "agreement_share": 0.5, "category_agreement_share": 0.5, "mean_abs_difference": 30.0},
    ]
    assert [r["day"] for r in collect(jobs.aqi_vs_source_df(hourly(spark, A_DAY1_HOURS), daily, n=5).where(
        "station = 'D'"), "rank_no")] == [date(2024, 2, 3), date(2024, 2, 1)]


def test_top_polluted_days_ties_go_to_earlier_day(spark):
    means = {1: 50, 2: 80, 3: 80, 4: 10}
    df = hourly(spark, [("A", datetime(2024, 1, d, 12), {"pm25": v}) for d, v in means.items()])
    result = collect(jobs.top_polluted_days_df(df, n=2), "rank")
    assert [(r["rank"], r["day"], r["pm25_mean"]) for r in result] == [
        (1, date(2024, 1, 2), 80.0),
        (2, date(2024, 1, 3), 80.0),
    ]


def test_diurnal_profile(spark):
    df = hourly(spark, [
        ("A", datetime(2024, 1, 1, 5), {"pm25": 10}),
        ("A", datetime(2024, 1, 2, 5), {"pm25": 30}),
        ("A", datetime(2024, 1, 2, 6), {"no2": 4}),
    ])
    result = collect(jobs.diurnal_profile_df(df), "hour_of_day")
    # 05:00: (10 + 30) / 2 = 20; 06:00: no PM2.5 -> null, NO2 4
    assert [(r["hour_of_day"], r["pm25_mean"], r["no2_mean"]) for r in result] == [(5, 20.0, None), (6, None, 4.0)]


def test_completeness_against_hours_in_month(spark):
    feb = datetime(2024, 2, 1)  # leap year: 29 days * 24 = 696 hours
    df = hourly(spark, [("A", t, {"pm25": 1, "pm10": 1 if t.hour == 0 else None}) for t in hours(feb, 3)])
    result = {r["column_name"]: r for r in jobs.completeness_df(df).collect()}
    assert len(result) == len(MEASURE_COLUMNS)  # every column, also the never-reported ones
    assert (result["pm25"]["n_values"], result["pm25"]["hours_in_month"]) == (3, 696)
    assert result["pm25"]["completeness"] == pytest.approx(3 / 696)
    assert result["pm10"]["completeness"] == pytest.approx(1 / 696)
    assert result["ws"]["completeness"] == 0.0


def test_wind_rose_sectors_and_bands(spark):
    t = datetime(2024, 1, 1)
    df = hourly(spark, [
        ("A", t, {"wd": 0, "ws": 0.5}),        # N (0 is the centre of N), band 0-1
        ("A", t, {"wd": 360, "ws": 0.2}),      # 360 = 0 -> N, 0-1
        ("A", t, {"wd": 350, "ws": 1.5}),      # (350 + 11.25) mod 360 = 1.25 -> sector 0 (N), 1-2
        ("A", t, {"wd": 11.25, "ws": 3}),      # 22.5 / 22.5 = 1 -> NNE (edge goes clockwise), 2-4
        ("A", t, {"wd": 180, "ws": 7}),        # 191.25 / 22.5 = 8.5 -> 8 = S, 6+
        ("A", t, {"wd": 400, "ws": 2}),        # not a direction: excluded
        ("A", t, {"wd": 90}),                  # no speed: excluded
    ])
    result = collect(jobs.wind_rose_df(df), "sector_index", "speed_band")
    # 5 valid hours: N 0-1 = 2/5, the others 1/5 each
    assert [(r["sector"], r["speed_band"], r["hours"], r["share"]) for r in result] == [
        ("N", "0-1", 2, 0.4), ("N", "1-2", 1, 0.2), ("NNE", "2-4", 1, 0.2), ("S", "6+", 1, 0.2),
    ]


def test_temp_ozone_correlation_per_month(spark):
    df = hourly(spark, [
        # Jan: ozone = 2 * AT -> r = 1; the hour without ozone is ignored (3 pairs)
        ("A", datetime(2024, 1, 1, 0), {"at": 10, "ozone": 20}),
        ("A", datetime(2024, 1, 1, 1), {"at": 20, "ozone": 40}),
        ("A", datetime(2024, 1, 1, 2), {"at": 30, "ozone": 60}),
        ("A", datetime(2024, 1, 1, 3), {"at": 40}),
        # Feb: x = 1,2,3, y = 3,1,2: dx = -1,0,1, dy = 1,-1,0 -> sum dx*dy = -1, Sxx = Syy = 2 -> r = -0.5
        ("A", datetime(2024, 2, 1, 0), {"at": 1, "ozone": 3}),
        ("A", datetime(2024, 2, 1, 1), {"at": 2, "ozone": 1}),
        ("A", datetime(2024, 2, 1, 2), {"at": 3, "ozone": 2}),
        # Mar: 2 pairs -> no coefficient
        ("A", datetime(2024, 3, 1, 0), {"at": 1, "ozone": 3}),
        ("A", datetime(2024, 3, 1, 1), {"at": 2, "ozone": 1}),
    ])
    result = collect(jobs.temp_ozone_corr_df(df), "month")
    assert [(r["month"], r["n_pairs"]) for r in result] == [("2024-01", 3), ("2024-02", 3), ("2024-03", 2)]
    assert result[0]["r_at_ozone"] == pytest.approx(1.0)
    assert result[1]["r_at_ozone"] == pytest.approx(-0.5)
    assert result[2]["r_at_ozone"] is None


def test_registry_keys_are_unique_in_every_result(spark):
    start = datetime(2024, 1, 30)
    records = [
        (s, t, {"pm25": 30 + (t.hour % 7), "pm10": 60 + t.hour, "no2": 20, "so2": 10, "co": 1.0,
                "ozone": 40 + t.hour, "at": 20 + t.hour % 5, "ws": t.hour % 6, "wd": 15 * t.hour})
        for s in ("A", "B") for t in hours(start, 72)
    ]
    df = hourly(spark, records)
    # The daily dataset: station B's first day again (hourly wins there), station C only here.
    daily = spark.createDataFrame(
        [("B", date(2024, 1, 30), None, *[40.0 if p in ("pm25", "pm10", "no2") else None for p in POLLUTANT_COLUMNS],
          97.0, "Satisfactory", "b.csv"),
         ("C", date(2024, 1, 30), None, *[40.0 if p in ("pm25", "pm10", "no2") else None for p in POLLUTANT_COLUMNS],
          67.0, "Satisfactory", "c.csv")],
        DAILY_SCHEMA)
    assert len(jobs.JOBS) == 11 and len({j.table for j in jobs.JOBS.values()}) == 11
    for job in jobs.JOBS.values():
        result = job.func(df, daily) if job.reads_daily else job.func(df)
        assert set(job.keys) <= set(result.columns), job.name
        total = result.count()
        assert total > 0, job.name
        assert result.select(*job.keys).distinct().count() == total, job.name
        assert result.where(" OR ".join(f"`{k}` IS NULL" for k in job.keys)).count() == 0, job.name
