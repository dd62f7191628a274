"""The energy pipeline's settings: Spark interval strings the producer reads as seconds."""
from __future__ import annotations

import pytest

from include.producers import energy
from include.streaming.energy_jobs import interval_seconds


def test_interval_seconds_reads_the_settings_form():
    assert [interval_seconds(t) for t in ("60 minutes", "10 minutes", "1 minute", "2 hours", "30 seconds")] == [
        3600, 600, 60, 7200, 30]


@pytest.mark.parametrize("text", ["", "ten minutes", "5 fortnights", "1.5 hours", "-5 minutes"])
def test_interval_seconds_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="is not an interval"):
        interval_seconds(text)


def test_the_join_defaults_are_the_producers():
    # Unset settings: the job's range and the producer's are the same.
    assert (interval_seconds("60 minutes"), interval_seconds("10 minutes")) == (
        energy.WEATHER_BEFORE_S, energy.WEATHER_AFTER_S)
