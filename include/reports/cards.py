"""What each card of the Reports page shows, computed from rows: plain functions, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Mapping, Sequence

# The health check's own reading of the offsets a progress record consumed, so this page and the
# *_streaming_health DAGs count lag alike (private there: a candidate for a public name).
from include.streaming.health import consumed_kafka_offsets as consumed_offsets

# ----------------------------------------------------------------------------- air quality


@dataclass(frozen=True)
class AqiSeries:
    station: str
    points: tuple[tuple[date, int], ...]  # (day, AQI), oldest first

    @property
    def latest(self) -> tuple[date, int]:
        return self.points[-1]


def aqi_series(rows: Iterable[Sequence]) -> list[AqiSeries]:
    """``(station, day, aqi)`` rows (any order) -> one series per station, days in order, stations by name."""
    by_station: dict[str, dict[date, int]] = {}
    for station, day, aqi in rows:
        if aqi is None:
            continue
        by_station.setdefault(str(station), {})[_as_date(day)] = int(aqi)
    return [AqiSeries(station, tuple(sorted(days.items()))) for station, days in sorted(by_station.items())]


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# ----------------------------------------------------------------------------- access logs


@dataclass(frozen=True)
class AccessLogDay:
    log_date: date
    answers: tuple[tuple[str, str], ...]  # the six questions and the day's answers
    top_clients: tuple[tuple[str, int], ...]
    client_errors_by_status: tuple[tuple[int, int], ...]
    quarantined_lines: int
    total_lines: int


def _count(n) -> str:
    return f"{int(n or 0):,}"


def access_log_day(summary: Mapping, top_clients: Iterable[Sequence], errors_by_status: Iterable[Sequence]) -> AccessLogDay:
    """The day's six answers from its ``access_log_daily_summary`` row (a column -> value mapping),
    with the top clients (``rank_no, client_ip, requests``) and the 4xx responses per status
    (``status, responses``) beside them."""
    most_requested = summary.get("most_requested_url")
    most_404 = summary.get("most_404_url")
    answers = (
        ("Unique client IPs", _count(summary.get("unique_client_ips"))),
        ("Requests answered 200 (distinct URLs)",
         f"{_count(summary.get('status_200_requests'))} ({_count(summary.get('status_200_distinct_urls'))} URLs)"),
        ("Client errors (4xx)", _count(summary.get("client_error_responses"))),
        (f"Responses over {_count(summary.get('large_response_min_bytes'))} bytes", _count(summary.get("large_responses"))),
        ("Most requested URL",
         f"{most_requested} ({_count(summary.get('most_requested_url_requests'))} requests)" if most_requested else "none"),
        ("URL with the most 404s",
         f"{most_404} ({_count(summary.get('most_404_url_responses'))} responses)" if most_404 else "none"),
    )
    return AccessLogDay(
        log_date=_as_date(summary["log_date"]),
        answers=answers,
        top_clients=tuple((str(ip), int(n)) for _, ip, n in sorted(top_clients, key=lambda r: r[0])),
        client_errors_by_status=tuple((int(s), int(n)) for s, n in sorted(errors_by_status)),
        quarantined_lines=int(summary.get("quarantined_lines") or 0),
        total_lines=int(summary.get("total_lines") or 0),
    )


# ----------------------------------------------------------------------------- streaming


@dataclass(frozen=True)
class QueryStatus:
    job: str
    query: str
    # None: the job has published no progress for this query yet
    last_batch_at: datetime | None = None
    seconds_since_batch: float | None = None
    batch_id: int | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    # records on the broker the query has not read; None when unknown (no broker answer, no Kafka source)
    lag_records: int | None = None


def kafka_partitions(progress: Iterable[Mapping]) -> list[tuple[str, int]]:
    """Every (topic, partition) the given progress records have read, for one broker call."""
    return sorted({key for p in progress for key in consumed_offsets(p)})


def query_statuses(progress_by_job: Mapping[str, Iterable[Mapping]], expected: Mapping[str, Sequence[str]],
                   end_offsets: Mapping[tuple[str, int], int] | None, now_ms: int) -> list[QueryStatus]:
    """One status per query: the expected queries of each job (missing ones included, as "no
    progress yet") and any other query a job published. ``progress_by_job`` holds the progress
    records (spark_apps/streaming/supervision.py) found under ``streaming/_status/<job>/``;
    ``end_offsets`` the broker's end offset per (topic, partition), None when the broker did not
    answer. Lag is counted as the health check does: end offset minus the query's consumed offset."""
    statuses = []
    for job in sorted(set(expected) | set(progress_by_job)):
        by_query = {p["name"]: p for p in progress_by_job.get(job, ()) if p.get("name")}
        for query in list(expected.get(job, ())) + sorted(set(by_query) - set(expected.get(job, ()))):
            progress = by_query.get(query)
            if progress is None:
                statuses.append(QueryStatus(job, query))
                continue
            # The time of the batch's trigger (Spark's progress timestamp) when known, else when it was published.
            written_ms = int(progress["written_at_ms"])
            batch_at = _parse_spark_timestamp(progress.get("batch_timestamp")) or \
                datetime.fromtimestamp(written_ms / 1000, tz=timezone.utc)
            consumed = consumed_offsets(progress)
            lag = None
            if consumed and end_offsets is not None and all(k in end_offsets for k in consumed):
                lag = sum(max(0, end_offsets[k] - offset) for k, offset in consumed.items())
            statuses.append(QueryStatus(
                job=job, query=query, last_batch_at=batch_at,
                seconds_since_batch=max(0.0, (now_ms - batch_at.timestamp() * 1000) / 1000),
                batch_id=progress.get("batch_id"),
                input_rows_per_second=progress.get("input_rows_per_second"),
                processed_rows_per_second=progress.get("processed_rows_per_second"),
                lag_records=lag,
            ))
    return statuses


def _parse_spark_timestamp(value) -> datetime | None:
    """Spark's progress ``timestamp`` (``2026-12-02T10:00:00.123Z``) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


# ----------------------------------------------------------------------------- NRT energy


@dataclass(frozen=True)
class EnergyRun:
    run_date: date
    charts: tuple[str, ...]  # file names under reports/<run_date>/
    # the run's row of energy_regression_runs (column -> value), None when the run wrote no metrics
    metrics: Mapping | None


def latest_energy_run(charts_by_date: Mapping[date, Sequence[str]], regression_rows: Iterable[Mapping]) -> EnergyRun | None:
    """The newest run date that has charts or a metrics row; None when the analysis never ran."""
    metrics_by_date = {_as_date(r["run_date"]): r for r in regression_rows}
    dated = {d for d, charts in charts_by_date.items() if charts} | set(metrics_by_date)
    if not dated:
        return None
    newest = max(dated)
    return EnergyRun(newest, tuple(sorted(charts_by_date.get(newest, ()))), metrics_by_date.get(newest))
