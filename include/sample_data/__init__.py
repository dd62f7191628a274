"""Small real sample files shipped with the repository (sources and licences: README.md here).

The demo and the tests read them from here, so a clone needs nothing beside it.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CPCB_BENGALURU_HOURLY = ROOT / "cpcb_bengaluru_hourly"  # BWSSB.xlsx (original export), BWSSB_export.csv
MTA_TURNSTILE_SAMPLE = ROOT / "mta_turnstile_sample"  # one real week of turnstile audit rows
OPENWEATHER_RESPONSES = ROOT / "openweather_responses"  # recorded current-weather API responses
