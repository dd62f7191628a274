"""The analysis's charts as PNG bytes, drawn headless with matplotlib (no Spark here: the numbers
arrive as plain Python values collected on the driver).

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never ``pyplot``:
pyplot keeps global state and picks a GUI backend from the environment (a desktop's, or none on
an EMR node); a Figure with Agg needs no display and nothing global.

PNG, not SVG: the Reports page serves both (include/reports/energy.py CHART_SUFFIXES), but a
scatter of thousands of points is thousands of SVG elements, and a raster of fixed size keeps
every chart a few tens of kB whatever the data.
"""
from __future__ import annotations

import io
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spark_apps.energy_analysis.profiles import DAY_NAMES, ProfilePoint

SCATTER = "energy_vs_temperature.png"
WEEKLY = "weekly_profile.png"
DAILY = "daily_profile.png"
CHART_NAMES = (SCATTER, WEEKLY, DAILY)

_SIZE = (8, 4.5)  # inches
_DPI = 100
_Y_LABEL = "energy use (kWh per hour)"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _figure(title: str):
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return figure, axes


def scatter_png(points: Sequence[tuple[float, float]], total_rows: int, slope: float, centre: tuple[float, float],
                run_label: str) -> bytes:
    """kWh per hour against temperature, with the model's temperature slope drawn through the
    data's mean point (``centre``: mean temperature, mean kWh per hour), i.e. the fitted effect of
    temperature at the average hour of day."""
    figure, axes = _figure(f"Energy use vs temperature ({run_label})")
    temps = [p[0] for p in points]
    kwh = [p[1] for p in points]
    shown = f"{len(points):,} of {total_rows:,} readings" if len(points) < total_rows else f"{total_rows:,} readings"
    axes.scatter(temps, kwh, s=6, alpha=0.35, linewidths=0, label=shown)
    if temps:
        lo, hi = min(temps), max(temps)
        x0, y0 = centre
        axes.plot([lo, hi], [y0 + slope * (lo - x0), y0 + slope * (hi - x0)], color="C3", linewidth=2,
                  label=f"fit: {slope:+.4f} kWh/h per °C (at the same hour)")
    axes.set_xlabel("temperature (°C)")
    axes.set_ylabel(_Y_LABEL)
    axes.legend(loc="best")
    return _png(figure)


def _bars(title: str, labels: Sequence[str], points: Sequence[ProfilePoint], x_label: str) -> bytes:
    figure, axes = _figure(title)
    axes.bar(range(len(points)), [p.mean_kwh_per_hour for p in points], color="C0")
    axes.set_xticks(range(len(points)), labels)
    axes.set_xlabel(x_label)
    axes.set_ylabel("mean " + _Y_LABEL)
    return _png(figure)


def weekly_png(points: Sequence[ProfilePoint], run_label: str) -> bytes:
    return _bars(f"Weekly profile ({run_label})", [DAY_NAMES[p.key] for p in points], points, "day of week (UTC)")


def daily_png(points: Sequence[ProfilePoint], run_label: str) -> bytes:
    return _bars(f"Daily profile ({run_label})", [str(p.key) for p in points], points, "hour of day (UTC)")
