"""Generate realistic CPCB-format hourly air-quality exports for tests and benchmarks.

One CSV per station, several stations in several cities, shaped like the real
exports (see /work/shared/data/cpcb_bengaluru_hourly): dates ``dd-mm-yyyy HH:MM``,
missing values as ``None``/``NA``/empty, and three file layouts in rotation:

* CCR preamble (State/City/Station lines) above a plain header,
* the same preamble with units in the header (``PM2.5 (ug/m3)``),
* no preamble; station and city only in the file name ``<city>__<station>.csv``.

:func:`write_kaggle_files` writes Kaggle's "Air Quality Data in India (2015-2020)" files
instead (stations, station_hour, city_hour, station_day, city_day), also as spreadsheet tools
re-save them (BOM, CRLF, DD-MM-YYYY dates).

Values follow a winter-high seasonal cycle, rush-hour peaks for PM/NO2/CO, an
afternoon ozone peak and temperature cycle, with random gaps (missing hours and
missing single values). A configurable share of rows is malformed (bad date,
non-numeric value, missing field); their exact number is returned, so a conversion
can be checked against it. Output is deterministic for a given seed.

    python -m include.generators.air_quality --out /tmp/aq_raw --rows 100000 --seed 7
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spark_apps.air_quality.schema import MEASURES, UNITS

STATIONS: list[tuple[str, str, str]] = [
    # (state, city, station)
    ("Karnataka", "Bengaluru", "BTM Layout"),
    ("Karnataka", "Bengaluru", "Peenya"),
    ("Delhi", "Delhi", "Anand Vihar"),
    ("Delhi", "Delhi", "ITO"),
    ("Maharashtra", "Mumbai", "Bandra"),
    ("Maharashtra", "Mumbai", "Colaba"),
    ("Tamil Nadu", "Chennai", "Alandur"),
    ("West Bengal", "Kolkata", "Victoria"),
    ("Uttar Pradesh", "Lucknow", "Talkatora"),
    ("Telangana", "Hyderabad", "Sanathnagar"),
]
# Column sets seen in real exports: the full list, and a typical smaller selection.
FULL_COLUMNS = list(MEASURES)
SMALL_COLUMNS = ["pm25", "pm10", "no2", "so2", "co", "ozone", "at", "rh", "ws", "wd"]
MISSING_SPELLINGS = ["None", "None", "None", "NA", ""]
START = datetime(2023, 1, 1)


@dataclass
class GeneratedFile:
    path: str
    station: str
    city: str
    data_rows: int
    bad_rows: int
    layout: str


@dataclass
class GeneratedSet:
    files: list[GeneratedFile] = field(default_factory=list)

    @property
    def data_rows(self) -> int:
        return sum(f.data_rows for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    @property
    def good_rows(self) -> int:
        return self.data_rows - self.bad_rows


def _series(rng: np.random.Generator, ts: pd.DatetimeIndex, column: str, city_level: float) -> np.ndarray:
    doy = ts.dayofyear.to_numpy()
    hour = ts.hour.to_numpy()
    winter = 1 + 0.5 * np.cos(2 * np.pi * (doy - 15) / 365.25)  # high in January
    rush = 1 + 0.35 * (np.exp(-((hour - 9) ** 2) / 4) + np.exp(-((hour - 20) ** 2) / 6))
    afternoon = np.exp(-((hour - 14) ** 2) / 8)
    noise = rng.lognormal(0, 0.25, len(ts))
    if column in ("pm25", "pm10", "no", "no2", "nox", "co", "so2", "nh3", "benzene", "toluene", "xylene"):
        base = {"pm25": 45, "pm10": 95, "no": 12, "no2": 30, "nox": 35, "co": 1.1, "so2": 12, "nh3": 25,
                "benzene": 2.5, "toluene": 8, "xylene": 1.5}[column]
        return base * city_level * winter * rush * noise
    if column == "ozone":
        return 15 + 45 * afternoon * (1.6 - 0.3 * winter) * noise
    if column == "at":
        seasonal = 5 * np.cos(2 * np.pi * (doy - 135) / 365.25)
        return 22 + seasonal + 5 * np.cos(2 * np.pi * (hour - 14) / 24) + rng.normal(0, 1, len(ts))
    if column == "rh":
        return np.clip(60 - 20 * afternoon + rng.normal(0, 8, len(ts)), 5, 100)
    if column == "ws":
        return np.abs(1.5 + 1.5 * afternoon + rng.normal(0, 0.8, len(ts)))
    if column == "wd":
        return np.mod(np.cumsum(rng.normal(0, 20, len(ts))) + 225, 360)
    if column == "sr":
        return np.clip(800 * np.sin(np.pi * (hour - 6) / 12), 0, None) * rng.uniform(0.6, 1, len(ts))
    if column == "bp":
        return 1005 + rng.normal(0, 3, len(ts))
    if column in ("rf", "tot_rf"):
        return np.where(rng.random(len(ts)) < 0.05, rng.exponential(2, len(ts)), 0.0)
    raise ValueError(column)


def _preamble(state: str, city: str, station: str, columns: list[str], start: datetime, end: datetime) -> list[str]:
    label = f'"{station}, {city} - CPCB"'
    return [
        "CENTRAL POLLUTION CONTROL BOARD,,,,,,",
        "CONTINUOUS AMBIENT AIR QUALITY,,,,,,",
        f'"Date: {datetime(2024, 6, 1):%A, %B %d %Y}",,,,,,',
        "Time: 06:32:36 PM,,,,,,",
        f"State,{state},,,,,,,",
        f"City,{city},,,,,,,",
        f"Station,{label},,,,,,,",
        f'Parameter,"{",".join(MEASURES[c] for c in columns)}",,,,,,,',
        "AvgPeriod,1 Hours,,,,,,,",
        f"From,{start:%d-%m-%Y}T00:00:00Z 00:00,,,,,,,",
        f"To,{end:%d-%m-%Y}T23:59:59Z 00:00,,,,,,,",
        f"{label},,,,,,",
        "Remarks",
    ]


def write_station_file(
    out_dir: Path, index: int, rows: int, seed: int, bad_share: float, gap_share: float
) -> GeneratedFile:
    state, city, station = STATIONS[index % len(STATIONS)]
    if index >= len(STATIONS):  # more stations than the list: number the extra ones
        station = f"{station} {index // len(STATIONS) + 1}"
    rng = np.random.default_rng([seed, index])
    layout = ["preamble", "preamble+units", "file-name"][index % 3]
    columns = FULL_COLUMNS if index % 2 == 0 else SMALL_COLUMNS
    # Missing hours: leave out runs of hours, so the rows written still total ``rows``.
    span = int(rows * (1 + 2 * gap_share)) + 48
    ts_all = pd.date_range(START, periods=span, freq="h")
    keep = rng.random(span) >= gap_share
    ts = ts_all[keep][:rows]
    if len(ts) < rows:  # not enough kept hours (tiny inputs): fill with the rest in order
        ts = ts_all[:rows]
    city_level = 0.6 + 0.8 * rng.random()

    cells = {
        "from": np.asarray(ts.strftime("%d-%m-%Y %H:%M"), dtype=object),
        "to": np.asarray((ts + pd.Timedelta(hours=1)).strftime("%d-%m-%Y %H:%M"), dtype=object),
    }
    for c in columns:
        values = np.char.mod("%.2f", _series(rng, ts, c, city_level)).astype(object)
        missing = rng.random(rows) < 0.03
        values[missing] = rng.choice(MISSING_SPELLINGS, missing.sum())
        cells[c] = values
    # Instrument outage: a whole day of 'None' somewhere in the file.
    if rows > 200:
        outage = int(rng.integers(0, rows - 24))
        for c in columns:
            cells[c][outage:outage + 24] = "None"
    lines = [",".join(parts) for parts in zip(cells["from"], cells["to"], *[cells[c] for c in columns])]

    n_bad = int(round(rows * bad_share))
    for k, row in enumerate(sorted(rng.choice(rows, n_bad, replace=False)) if n_bad else []):
        kind = k % 3
        fields = lines[row].split(",")
        if kind == 0:
            fields[0] = "31-02-2023 25:00"  # no such date
        elif kind == 1:
            fields[2 + int(rng.integers(0, len(columns)))] = "12..5"  # typo in a number
        else:
            fields = fields[:-1]  # a field lost
        lines[row] = ",".join(fields)

    if layout == "preamble+units":
        header = ["From Date", "To Date", *[f"{MEASURES[c]} ({UNITS[c]})" for c in columns]]
    else:
        header = ["From Date", "To Date", *[MEASURES[c] for c in columns]]
    if layout == "file-name":
        path = out_dir / f"{city}__{station.replace(' ', '_')}.csv"
        head = []
        station_name = station.replace(" ", "_")
    else:
        path = out_dir / f"station_{index:03d}.csv"
        head = _preamble(state, city, station, columns, ts[0].to_pydatetime(), ts[-1].to_pydatetime())
        station_name = f"{station}, {city} - CPCB"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\n".join([*head, ",".join(header), *lines]) + "\n")
    return GeneratedFile(str(path), station_name, city, rows, n_bad, layout)


def generate(
    out_dir: str | Path,
    rows: int,
    stations: int = 6,
    seed: int = 42,
    bad_share: float = 0.001,
    gap_share: float = 0.02,
) -> GeneratedSet:
    """Write ``rows`` data rows split over ``stations`` CSV files into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = GeneratedSet()
    per_station = [rows // stations + (1 if i < rows % stations else 0) for i in range(stations)]
    for index, n in enumerate(per_station):
        if n:
            result.files.append(write_station_file(out_dir, index, n, seed, bad_share, gap_share))
    return result


# Kaggle "Air Quality Data in India (2015-2020)": the measure columns of its hourly and daily files.
KAGGLE_MEASURES = ["pm25", "pm10", "no", "no2", "nox", "nh3", "co", "so2", "ozone", "benzene", "toluene", "xylene"]
KAGGLE_LABELS = {**MEASURES, "ozone": "O3"}


def _station_ids() -> list[str]:
    """Kaggle's StationId style: state code and a number per station (``KA001``)."""
    ids, per_state = [], {}
    for state, _city, _station in STATIONS:
        code = "".join(w[0] for w in state.split()).upper()[:2] if " " in state else state[:2].upper()
        per_state[code] = per_state.get(code, 0) + 1
        ids.append(f"{code}{per_state[code]:03d}")
    return ids


def source_aqi(daily: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The AQI and bucket a Kaggle daily file would state, from its values as written: CPCB's
    sub-indices of the 24-hour pollutants (at least three, one of them PM), as jobs.daily_aqi_df
    computes them from a daily file, so a generated set is reproduced exactly."""
    from spark_apps.air_quality.jobs import AQI_24H_POLLUTANTS, AQI_BREAKPOINTS, AQI_CATEGORIES, AQI_INDEX_BOUNDS

    sub = {}
    for p in AQI_24H_POLLUTANTS:
        c = daily[p].clip(lower=0)
        bounds = AQI_BREAKPOINTS[p]
        index = 400 + 100 / (bounds[-1] - bounds[-2]) * (c - bounds[-1])
        index = index.clip(upper=500)
        for lo, hi, i_lo, i_hi in reversed(list(zip([0.0, *bounds[:-1]], bounds, AQI_INDEX_BOUNDS, AQI_INDEX_BOUNDS[1:]))):
            index = index.where(c > hi, i_lo + (i_hi - i_lo) / (hi - lo) * (c - lo))
        sub[p] = index.where(daily[p].notna())
    sub = pd.DataFrame(sub)
    valid = (sub.notna().sum(axis=1) >= 3) & (sub["pm25"].notna() | sub["pm10"].notna())
    # Half up, as Spark's round(): pandas' round() would round half to even.
    aqi = np.floor(sub.max(axis=1) + 0.5).where(valid)
    bucket = pd.cut(aqi, [-1, *AQI_INDEX_BOUNDS[1:], np.inf], labels=AQI_CATEGORIES).astype(object)
    return aqi, bucket.where(aqi.notna(), None)


def write_kaggle_files(out_dir: str | Path, stations: int = 4, days: int = 3, seed: int = 42,
                       resaved: bool = False) -> GeneratedSet:
    """Kaggle's five files for ``stations`` stations over ``days`` days into ``out_dir``:
    ``stations.csv``, ``station_hour.csv``, ``city_hour.csv`` (per city, the mean of its
    stations), ``station_day.csv`` and ``city_day.csv`` (daily means, with the AQI and bucket of
    :func:`source_aqi`); 3 % of the cells empty, as in Kaggle's files.

    ``resaved``: as a spreadsheet tool saves them again: a UTF-8 BOM, CRLF line endings and
    DD-MM-YYYY dates (``24-11-2017 17:00``) instead of Kaggle's ``2017-11-24 17:00:00``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 12])
    ts = pd.date_range(START, periods=24 * days, freq="h")
    ids = _station_ids()
    frames = []
    for index in range(stations):
        state, city, station = STATIONS[index % len(STATIONS)]
        level = 0.6 + 0.8 * rng.random()
        frame = pd.DataFrame({c: np.round(_series(rng, ts, c, level), 2) for c in KAGGLE_MEASURES})
        frame[rng.random(frame.shape) < 0.03] = np.nan
        frame.insert(0, "ts", ts)
        frame.insert(0, "city", city)
        frame.insert(0, "station_id", ids[index % len(ids)])
        frames.append(frame)
    hourly = pd.concat(frames, ignore_index=True)

    def daily_of(rows: pd.DataFrame, key: str) -> pd.DataFrame:
        daily = rows.groupby([key, rows["ts"].dt.normalize()], sort=True)[KAGGLE_MEASURES].mean().round(2).reset_index()
        daily["aqi"], daily["bucket"] = source_aqi(daily)
        return daily

    city_hourly = hourly.groupby(["city", "ts"], sort=True)[KAGGLE_MEASURES].mean().round(2).reset_index()
    hour_format, day_format = ("%d-%m-%Y %H:%M", "%d-%m-%Y") if resaved else ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
    newline = "\r\n" if resaved else "\n"

    def write(name: str, header: list[str], rows: list[list[str]]) -> Path:
        path = out_dir / name
        text = newline.join(",".join(cells) for cells in [header, *rows]) + newline
        path.write_text(("\ufeff" if resaved else "") + text, encoding="utf-8", newline="")
        return path

    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:g}"

    labels = [KAGGLE_LABELS[c] for c in KAGGLE_MEASURES]
    result = GeneratedSet()
    listed = [(ids[i % len(ids)], *STATIONS[i % len(STATIONS)]) for i in range(stations)]
    path = write("stations.csv", ["StationId", "StationName", "City", "State", "Status"],
                 [[sid, f'"{station}, {city} - CPCB"', city, state, "Active"] for sid, state, city, station in listed])
    result.files.append(GeneratedFile(str(path), "", "", 0, 0, "kaggle_stations"))
    for name, key, rows, daily in (("station", "station_id", hourly, False), ("city", "city", city_hourly, False),
                                   ("station", "station_id", hourly, True), ("city", "city", city_hourly, True)):
        if daily:
            table = daily_of(rows, key)
            lines = [[r[key], r["ts"].strftime(day_format), *[cell(r[c]) for c in KAGGLE_MEASURES], cell(r["aqi"]),
                      r["bucket"] or ""] for _, r in table.iterrows()]
            header = ["StationId" if key == "station_id" else "City", "Date", *labels, "AQI", "AQI_Bucket"]
        else:
            lines = [[r[key], r["ts"].strftime(hour_format), *[cell(r[c]) for c in KAGGLE_MEASURES], "", ""]
                     for _, r in rows.iterrows()]
            header = ["StationId" if key == "station_id" else "City", "Datetime", *labels, "AQI", "AQI_Bucket"]
        layout = f"kaggle_{name}_{'day' if daily else 'hour'}"
        path = write(f"{name}_{'day' if daily else 'hour'}.csv", header, lines)
        result.files.append(GeneratedFile(str(path), "", "", len(lines), 0, layout))
    return result


def main(argv: list[str] | None = None) -> GeneratedSet:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the CSV files")
    parser.add_argument("--rows", type=int, required=True, help="data rows in total")
    parser.add_argument("--stations", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-share", type=float, default=0.001, help="share of malformed rows")
    parser.add_argument("--gap-share", type=float, default=0.02, help="share of hours left out")
    parser.add_argument("--kaggle-days", type=int, default=0,
                        help="also write Kaggle's five files over this many days (0: none)")
    parser.add_argument("--resaved", action="store_true", help="Kaggle files as a spreadsheet re-saves them")
    args = parser.parse_args(argv)
    result = generate(args.out, args.rows, args.stations, args.seed, args.bad_share, args.gap_share)
    if args.kaggle_days:
        kaggle = write_kaggle_files(Path(args.out) / "kaggle", args.stations, args.kaggle_days, args.seed, args.resaved)
        result.files += kaggle.files
    print(json.dumps({"data_rows": result.data_rows, "bad_rows": result.bad_rows,
                      "files": [asdict(f) for f in result.files]}, indent=2))
    return result


if __name__ == "__main__":
    main()
