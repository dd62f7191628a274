"""Polling for the streaming pipeline tests: a job's effects show up asynchronously."""
from __future__ import annotations

import time


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.5, tick=None):
    """Poll ``predicate`` until true (``tick()`` between polls may raise to stop early)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if tick is not None:
            tick()
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
