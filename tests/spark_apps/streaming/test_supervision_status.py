"""What a supervised job leaves in its status folder when it starts (spark_apps/streaming/supervision.py):
the markers of the last stop are gone, and the time of the job's first start survives a resubmission
(the health check's grace for a new job, include/streaming/health.py)."""
from __future__ import annotations

import json

from spark_apps.streaming.supervision import STARTED_MARKER, STOP_MARKER, STOPPED_MARKER, prepare_status


def test_a_resubmission_keeps_the_first_start_and_clears_the_stop(spark, tmp_path):
    (tmp_path / STOP_MARKER).write_text("")
    (tmp_path / STOPPED_MARKER).write_text("{}")
    prepare_status(spark, tmp_path.as_uri())
    assert not (tmp_path / STOP_MARKER).exists() and not (tmp_path / STOPPED_MARKER).exists()
    first = json.loads((tmp_path / STARTED_MARKER).read_text())["started_at_ms"]
    assert first > 0

    (tmp_path / STOP_MARKER).write_text("")
    prepare_status(spark, tmp_path.as_uri())  # the job resubmitted after a stop or a failure
    assert not (tmp_path / STOP_MARKER).exists()
    assert json.loads((tmp_path / STARTED_MARKER).read_text())["started_at_ms"] == first
