"""Defaults every DAG of the platform shares (owner, retries), so the integrity suite's
rules are met in one place."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

OWNER = "data-platform"
START_DATE = datetime(2024, 1, 1)
DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 1,
    "retry_delay": timedelta(minutes=1),
}
# Templates (SQL files) are looked up here, relative to the repo's include/ folder.
TEMPLATE_SEARCHPATH = [str(Path(__file__).resolve().parents[1] / "sql")]
