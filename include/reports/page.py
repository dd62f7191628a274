"""The Reports page as one HTML document: a card per pipeline. Every value is escaped; chart
URLs are relative to the page (the Airflow UI frames it under its own base URL)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Sequence
from urllib.parse import quote

from include.reports import energy
from include.reports.cards import AccessLogDay, AqiSeries, EnergyRun, QueryStatus

AQI_CHART = "charts/air_quality_daily_aqi.svg"


@dataclass(frozen=True)
class Card:
    key: str  # the section's id: card-<key>
    title: str
    body: str  # HTML, already escaped
    state: str = "ok"  # ok | empty | error


def error_card(key: str, title: str, what: str, exc: BaseException) -> Card:
    # The exception's class and message only (driver and S3 errors name hosts and tables, never passwords).
    return Card(key, title, f'<p class="error">Could not read {escape(what)}: '
                            f"{escape(type(exc).__name__)}: {escape(str(exc)[:300])}</p>", "error")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if i >= numeric_from else ""}>{escape(str(v))}</td>' for i, v in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def energy_card(run: EnergyRun | None) -> Card:
    title = "NRT energy x weather"
    if run is None:
        return Card("energy", title,
                    '<p class="empty">No analysis run yet.</p>'
                    f"<p class=hint>Charts will appear from the lake's <code>{energy.REPORTS_DIR}/&lt;run date&gt;/</code>, "
                    f"regression metrics from MySQL <code>{energy.REGRESSION_RUNS_TABLE}</code>.</p>", "empty")
    parts = [f"<p>Run of <b>{run.run_date.isoformat()}</b></p>"]
    if run.metrics:
        metrics = run.metrics
        rows = [(name, _number(metrics.get(name))) for name in ("rmse", "mae", "r2", "train_rows", "test_rows")
                if name in metrics]
        parts.append("<h3>Linear regression (test split)</h3>" + _table(("metric", "value"), rows))
    else:
        parts.append(f'<p class="empty">No regression metrics for this run in <code>{energy.REGRESSION_RUNS_TABLE}</code>.</p>')
    if run.charts:
        parts.append('<div class="charts">' + "".join(
            f'<figure><img class="chart" alt="{escape(name)}" '
            f'src="energy/charts/{run.run_date.isoformat()}/{quote(name)}"><figcaption>{escape(name)}</figcaption></figure>'
            for name in run.charts) + "</div>")
    else:
        parts.append('<p class="empty">No charts for this run.</p>')
    return Card("energy", title, "".join(parts))


def air_quality_card(series: Sequence[AqiSeries]) -> Card:
    title = "Air quality: daily AQI per station"
    if not series:
        return Card("air-quality", title, '<p class="empty">No AQI yet: <code>air_quality_jobs</code> has not written '
                                          "<code>aq_daily_aqi</code>.</p>", "empty")
    latest = [(s.station, s.latest[0].isoformat(), s.latest[1]) for s in series]
    return Card("air-quality", title,
                f'<img class="chart" alt="Daily AQI per station" src="{AQI_CHART}">'
                + _table(("station", "latest day", "AQI"), latest, numeric_from=2))


def access_logs_card(day: AccessLogDay | None) -> Card:
    title = "Access logs: the day's six answers"
    if day is None:
        return Card("access-logs", title, '<p class="empty">No day analysed yet: <code>access_log_analysis</code> has not '
                                          "written <code>access_log_daily_summary</code>.</p>", "empty")
    parts = [f"<p>Log date <b>{day.log_date.isoformat()}</b>: {day.total_lines:,} lines, "
             f"{day.quarantined_lines:,} quarantined</p>",
             '<table class="answers"><tbody>' + "".join(
                 f"<tr><th>{i}. {escape(q)}</th><td>{escape(a)}</td></tr>" for i, (q, a) in enumerate(day.answers, 1))
             + "</tbody></table>"]
    if day.top_clients:
        parts.append("<h3>Top clients</h3>" + _table(("client IP", "requests"), day.top_clients))
    if day.client_errors_by_status:
        parts.append("<h3>4xx by status</h3>" + _table(("status", "responses"), day.client_errors_by_status))
    return Card("access-logs", title, "".join(parts))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def streaming_card(statuses: Sequence[QueryStatus], broker_problem: str | None = None) -> Card:
    title = "Streaming queries"
    if not statuses:
        return Card("streaming", title, '<p class="empty">No streaming job has published progress yet.</p>', "empty")
    rows = []
    for s in statuses:
        if s.last_batch_at is None:
            rows.append((s.job, s.query, "no progress yet", "-", "-", "-"))
            continue
        rows.append((s.job, s.query,
                     f"{s.last_batch_at.strftime('%Y-%m-%d %H:%M:%S')} UTC ({_age(s.seconds_since_batch)})",
                     _number(s.input_rows_per_second, 1), _number(s.processed_rows_per_second, 1),
                     "-" if s.lag_records is None else f"{s.lag_records:,}"))
    note = f'<p class="hint">Lag unknown: {escape(broker_problem)}</p>' if broker_problem else ""
    return Card("streaming", title,
                _table(("job", "query", "last batch", "input rows/s", "processed rows/s", "lag (records)"), rows,
                       numeric_from=3) + note)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;background:#f7fafc}
h1{font-size:20px;margin:0 0 4px} .generated{color:#718096;font-size:12px;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 16px;overflow-x:auto}
#card-streaming{grid-column:1/-1} .card h2{font-size:16px;margin:0 0 8px} .card h3{font-size:13px;margin:12px 0 4px}
table{border-collapse:collapse;font-size:13px} th,td{padding:3px 8px;border-bottom:1px solid #edf2f7;text-align:left}
#card-streaming td{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums} table.answers th{font-weight:normal;color:#4a5568}
img.chart{max-width:100%;height:auto;display:block;margin:4px 0 8px}
.charts{display:flex;flex-wrap:wrap;gap:8px} figure{margin:0} figcaption{font-size:12px;color:#718096}
.empty{color:#718096;font-style:italic} .hint{color:#718096;font-size:12px} .error{color:#c53030}
code{background:#edf2f7;padding:0 3px;border-radius:3px}
"""


def render(cards: Sequence[Card], user_name: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    sections = "".join(f'<section class="card" id="card-{c.key}" data-state="{c.state}"><h2>{escape(c.title)}</h2>'
                       f"{c.body}</section>" for c in cards)
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Reports</title>"
            f"<style>{STYLE}</style></head><body><h1>Reports</h1>"
            f'<p class="generated">{now.strftime("%Y-%m-%d %H:%M:%S")} UTC, for {escape(user_name)}</p>'
            f'<div class="cards">{sections}</div></body></html>')
