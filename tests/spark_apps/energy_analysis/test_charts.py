"""The charts are real PNG images of the stated size (decoded by Pillow), whatever the data."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from spark_apps.energy_analysis import charts
from spark_apps.energy_analysis.profiles import ProfilePoint

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _decoded(data: bytes) -> Image.Image:
    assert data[:8] == PNG_MAGIC
    Image.open(io.BytesIO(data)).verify()  # the whole stream: a truncated file fails here
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("draw", [
    lambda: charts.scatter_png([(t / 10, 1 + t / 100) for t in range(300)], 10_000, -0.04, (15.0, 1.1), "2026-12-02"),
    lambda: charts.scatter_png([], 0, 0.0, (0.0, 0.0), "2026-12-02"),  # no points: still an image
    lambda: charts.weekly_png([ProfilePoint(d, 1.0 + d / 10, 5) for d in range(7)], "2026-12-02"),
    lambda: charts.daily_png([ProfilePoint(h, 0.5 + h / 24, 5) for h in range(24)], "2026-12-02"),
], ids=["scatter", "scatter-empty", "weekly", "daily"])
def test_charts_are_valid_pngs(draw):
    image = _decoded(draw())
    assert image.format == "PNG"
    assert image.size == (800, 450)


def test_chart_names_are_what_the_reports_page_serves():
    from include.reports.energy import is_chart_name

    assert all(is_chart_name(name) for name in charts.CHART_NAMES)
    assert len(set(charts.CHART_NAMES)) == 3
