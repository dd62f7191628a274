"""Line charts as SVG documents, drawn server-side.

Why not matplotlib: it is not one of the platform's dependencies (the api-server would carry it
for one chart), and a dated line chart with shaded bands is a few dozen lines of SVG that any
browser draws crisply at any size. Charts the analysis DAG renders itself (PNG or SVG files in
the lake) are served as they are.
"""
from __future__ import annotations

from datetime import date
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

# Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

# CPCB's National AQI categories: (upper bound, name, colour of its band).
AQI_BANDS = (
    (50, "Good", "#00b050"),
    (100, "Satisfactory", "#92d050"),
    (200, "Moderate", "#ffd700"),
    (300, "Poor", "#ff9900"),
    (400, "Very poor", "#ff0000"),
    (500, "Severe", "#c00000"),
)

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 52, 150, 30, 36


def _nice_top(peak: float, bands: Sequence[tuple[float, str, str]]) -> float:
    for upper, _, _ in bands:
        if peak <= upper:
            return upper
    step = 10 ** max(0, len(str(int(peak))) - 1)
    return float(-(-peak // step) * step) or 1.0


def line_chart(series: Sequence[tuple[str, Sequence[tuple[date, float]]]], *, title: str, y_label: str,
               bands: Sequence[tuple[float, str, str]] = ()) -> str:
    """An SVG document: one line per ``(label, [(day, value), ...])``, days on x, shaded ``bands``
    (``(upper bound, name, colour)``, ascending) behind them."""
    points = [p for _, pts in series for p in pts]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" font-family="sans-serif" font-size="11" role="img" aria-label={quoteattr(title)}>',
             f"<title>{escape(title)}</title>",
             '<rect width="100%" height="100%" fill="#ffffff"/>',
             f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if not points:
        parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" fill="#666">no data</text>')
        return "".join(parts) + "</svg>"

    first = min(d for d, _ in points)
    last = max(d for d, _ in points)
    span_days = max(1, (last - first).days)
    y_top = _nice_top(max(v for _, v in points), bands)

    def x(day: date) -> float:
        return LEFT + plot_w * (day - first).days / span_days if last != first else LEFT + plot_w / 2

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, y_top) / y_top)

    lower = 0.0
    for upper, name, colour in bands:
        if lower >= y_top:
            break
        top = min(upper, y_top)
        parts.append(f'<rect x="{LEFT}" y="{y(top):.1f}" width="{plot_w}" height="{y(lower) - y(top):.1f}" '
                     f'fill="{colour}" fill-opacity="0.13"><title>{escape(name)}</title></rect>')
        parts.append(f'<text x="{LEFT + plot_w - 4}" y="{y(top) + 11:.1f}" text-anchor="end" fill="#555">{escape(name)}</text>')
        lower = upper
    ticks = [upper for upper, _, _ in bands if upper <= y_top] or [y_top / 2, y_top]
    for tick in [0.0, *ticks]:
        parts.append(f'<line x1="{LEFT - 4}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    n_ticks = min(6, span_days + 1)
    for i in range(n_ticks):
        day = date.fromordinal(first.toordinal() + round(i * span_days / max(1, n_ticks - 1)))
        parts.append(f'<text x="{x(day):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{day.isoformat()}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    parts.append(f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')

    for i, (label, pts) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(pts)
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in ordered)
        if len(ordered) > 1:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8" '
                         f'class="series"><title>{escape(label)}</title></polyline>')
        else:
            d, v = ordered[0]
            parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}" class="series">'
                         f'<title>{escape(label)}</title></circle>')
        legend_y = TOP + 6 + 16 * i
        parts.append(f'<rect x="{WIDTH - RIGHT + 12}" y="{legend_y}" width="12" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 30}" y="{legend_y + 5}">{escape(label[:22])}</text>')
    return "".join(parts) + "</svg>"
