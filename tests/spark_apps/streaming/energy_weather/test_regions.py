"""What the energy producer and the join share without Spark: Spark interval strings read as
seconds (the producer's range)."""
from __future__ import annotations

import pytest

from spark_apps.streaming.energy_weather.regions import interval_seconds


def test_interval_seconds_reads_the_settings_form():
    assert [interval_seconds(t) for t in ("60 minutes", "10 minutes", "1 minute", "2 hours", "30 seconds")] == [
        3600, 600, 60, 7200, 30]


@pytest.mark.parametrize("text", ["", "ten minutes", "5 fortnights", "1.5 hours", "-5 minutes"])
def test_interval_seconds_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="is not an interval"):
        interval_seconds(text)
