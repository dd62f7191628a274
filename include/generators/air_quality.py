"""Generate realistic CPCB-format hourly air-quality exports for tests and benchmarks.

One CSV per station, several stations in several cities, shaped like the real
exports (see /work/shared/data/cpcb_bengaluru_hourly): dates ``dd-mm-yyyy HH:MM``,
missing values as ``None``/``NA``/empty, and three file layouts in rotation:

* CCR preamble (State/City/Station lines) above a plain header,
* the same preamble with units in the header (``PM2.5 (ug/m3)``),
* no preamble; station and city only in the file name ``<city>__<station>.csv``.

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


def main(argv: list[str] | None = None) -> GeneratedSet:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the CSV files")
    parser.add_argument("--rows", type=int, required=True, help="data rows in total")
    parser.add_argument("--stations", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-share", type=float, default=0.001, help="share of malformed rows")
    parser.add_argument("--gap-share", type=float, default=0.02, help="share of hours left out")
    args = parser.parse_args(argv)
    result = generate(args.out, args.rows, args.stations, args.seed, args.bad_share, args.gap_share)
    print(json.dumps({"data_rows": result.data_rows, "bad_rows": result.bad_rows,
                      "files": [asdict(f) for f in result.files]}, indent=2))
    return result


if __name__ == "__main__":
    main()
