"""The stale-query alarm of include/streaming/health.py: a query whose last batch is older than
the limit fails the health check, naming the query, its age and the limit; at the limit it is
still healthy. Progress files are hand-made, the clock is given (no waiting)."""
from __future__ import annotations

import json

import pytest

from include.streaming import health

# No offsets in the progress: the check needs no broker (lag 0).
BROKER = "127.0.0.1:9"


def _progress(folder, name: str, written_at_ms: int) -> None:
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "written_at_ms": written_at_ms, "input_rows_per_second": 4.0,
        "processed_rows_per_second": 5.0, "sources": [],
    }))


def test_a_query_exactly_at_the_limit_is_healthy(tmp_path):
    _progress(tmp_path, "q", written_at_ms=1_000)
    [report] = health.check(tmp_path, BROKER, ["q"], max_staleness_s=60, max_lag_records=0, now_ms=61_000)
    assert report.seconds_since_batch == 60
    assert report.line() == "q: last batch 60s ago, input 4.0 rows/s, processed 5.0 rows/s, lag 0 records"


def test_a_query_without_a_batch_past_the_limit_raises_the_alarm(tmp_path):
    _progress(tmp_path, "fresh", written_at_ms=100_000)
    _progress(tmp_path, "stale", written_at_ms=1_000)
    with pytest.raises(health.StreamingUnhealthy) as alarm:
        health.check(tmp_path, BROKER, ["fresh", "stale"], max_staleness_s=60, max_lag_records=0, now_ms=101_000)
    assert str(alarm.value) == "stale: stale, no batch for 100s (limit 60s)"


def _started(folder, started_at_ms: int) -> None:
    (folder / health.STARTED_FILE).write_text(json.dumps({"started_at_ms": started_at_ms}))


def test_a_new_job_has_the_limit_from_its_first_start_to_publish_a_batch(tmp_path):
    _started(tmp_path, started_at_ms=1_000)
    [report] = health.check(tmp_path, BROKER, ["q"], max_staleness_s=60, max_lag_records=0, now_ms=31_000)
    assert report.seconds_since_batch is None
    assert report.line() == "q: starting, no batch yet (30s since the job first started)"
    with pytest.raises(health.StreamingUnhealthy) as alarm:
        health.check(tmp_path, BROKER, ["q"], max_staleness_s=60, max_lag_records=0, now_ms=62_000)
    assert str(alarm.value) == "q: no progress published yet (is the job running?)"


def test_without_a_start_record_a_missing_progress_is_an_alarm(tmp_path):
    with pytest.raises(health.StreamingUnhealthy, match="q: no progress published yet"):
        health.check(tmp_path, BROKER, ["q"], max_staleness_s=60, max_lag_records=0, now_ms=1_000)


def test_a_query_over_a_websocket_has_no_lag_and_is_checked_for_staleness(tmp_path):
    # The WebSocket source's offsets (spark_apps/streaming/websocket/source.py), as Spark reports them.
    (tmp_path / "websocket_ingest.json").write_text(json.dumps({
        "name": "websocket_ingest", "written_at_ms": 1_000, "input_rows_per_second": 0.5,
        "processed_rows_per_second": 1.0,
        "sources": [{"description": "PythonMicroBatchStream", "latest_offset": "null",
                     "end_offset": json.dumps({"session": "916aaa13", "index": 34})}],
    }))
    [report] = health.check(tmp_path, BROKER, ["websocket_ingest"], max_staleness_s=60, max_lag_records=0,
                            now_ms=2_000)
    assert (report.lag_records, report.seconds_since_batch) == (0, 1)
