"""The versions of the per-minute metrics aggregation by number, and their tables: without Spark,
so that DAG files (the replay DAG's trigger form) can list them at parse time. What each version
computes is in :mod:`.minute_aggregates`, which checks it defines exactly these."""
from __future__ import annotations

DESCRIPTIONS = {
    1: "count, sum, min, max, avg per minute, host and metric (job B's live table)",
    2: "version 1 plus p95, the exact 95th percentile of the minute's values",
}
CURRENT_VERSION = max(DESCRIPTIONS)
VIEW = "metric_minute_aggregates_current"


def table_name(version: int) -> str:
    """Version 1 is job B's table; later versions have their own, ``metric_minute_aggregates_v<N>``."""
    if version not in DESCRIPTIONS:
        raise ValueError(f"unknown aggregation version {version} (known: {sorted(DESCRIPTIONS)})")
    return "metric_minute_aggregates" if version == 1 else f"metric_minute_aggregates_v{version}"
