"""The Reports page's FastAPI app, mounted by Airflow's api-server under ``/reports``
(plugins/reports_plugin.py registers it as one of the plugin's ``fastapi_apps``).

Plugin apps are not protected by Airflow's auth by themselves: every route here depends on
Airflow's own ``requires_access_view`` (airflow.api_fastapi.core_api.security), which reads the
UI's JWT (the ``_token`` cookie the UI sets at login, or an ``Authorization: Bearer`` header),
verifies it with the configured auth manager, and asks that auth manager whether the user may see
the website. No token: 401; a bad or foreign token: 403.

Each card reads its sources on its own, so a source that is down turns its card into an error
line, not the page into a 500.
"""
# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run time,
# and GetUserDep is imported inside create_app(), where a postponed (string) annotation cannot be resolved.
import logging
import time
from datetime import date
from typing import Callable

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse

from include.reports import cards, energy, lake, page, results_db, svg

log = logging.getLogger(__name__)

URL_PREFIX = "/reports"
# The page only shows images (its own and the lake's charts), so nothing else may load; an SVG from
# the lake opened on its own runs no script. Framed by the Airflow UI (same origin) only.
PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'"
MEDIA_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
BROKER_TIMEOUT_S = 5.0
AQI_DAYS = 90


def _results_connection():
    """A DB-API connection of the ``mysql_results`` connection (the DAGs' results database)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    from include.platform import settings

    return MySqlHook(mysql_conn_id=settings.load().mysql_conn_id).get_conn()


def _with_results_db(read: Callable):
    conn = _results_connection()
    try:
        return read(conn)
    finally:
        conn.close()


def _card(key: str, title: str, what: str, build: Callable[[], page.Card]) -> page.Card:
    try:
        return build()
    except Exception as exc:  # one source down: its card says so, the other cards still show
        log.warning("Reports page: reading %s failed", what, exc_info=True)
        return page.error_card(key, title, what, exc)


def energy_run(lake_uri: str, aws_conn_id: str) -> cards.EnergyRun | None:
    folders, _ = lake.list_folder(f"{lake_uri.rstrip('/')}/{energy.REPORTS_DIR}", aws_conn_id)
    charts_by_date = {}
    for run_date in energy.run_dates(folders)[:5]:
        _, files = lake.list_folder(energy.charts_uri(lake_uri, run_date), aws_conn_id)
        charts_by_date[run_date] = [name for name in files if energy.is_chart_name(name)]
    return cards.latest_energy_run(charts_by_date, _with_results_db(results_db.energy_regression_runs))


def expected_queries() -> dict[str, list[str]]:
    """Every supervised job's status folder -> its query names (a job without progress yet shows too)."""
    from include.streaming import app_events_jobs, energy_jobs, metrics_jobs, turnstile_jobs, weather_jobs, websocket_jobs

    return {**metrics_jobs.QUERIES, **weather_jobs.QUERIES, **turnstile_jobs.QUERIES, **websocket_jobs.QUERIES,
            **app_events_jobs.QUERIES, **energy_jobs.QUERIES}


def streaming_statuses(aws_conn_id: str) -> tuple[list[cards.QueryStatus], str | None]:
    """Every streaming query's status from the progress files under ``streaming/_status/<job>/``,
    lag from the broker's end offsets (the second value says why lag is unknown, if it is)."""
    from include.platform import settings
    from include.streaming import health, metrics_jobs

    expected = expected_queries()
    job_folders, _ = lake.list_folder(metrics_jobs.STATUS, aws_conn_id)
    progress_by_job = {job: health.read_progress(f"{metrics_jobs.STATUS}/{job}", aws_conn_id)
                       for job in sorted(set(expected) | set(job_folders))}
    partitions = cards.kafka_partitions(p for records in progress_by_job.values() for p in records)
    end_offsets, broker_problem = None, None
    if partitions:
        try:
            end_offsets = health.end_offsets(metrics_jobs.bootstrap_servers(settings.load()), partitions,
                                             timeout_s=BROKER_TIMEOUT_S)
        except Exception as exc:  # the broker is down or slow: show the rest, say why lag is missing
            broker_problem = f"the broker did not answer ({type(exc).__name__}: {str(exc)[:200]})"
    statuses = cards.query_statuses({j: p for j, p in progress_by_job.items() if p or j in expected}, expected,
                                    end_offsets, int(time.time() * 1000))
    return statuses, broker_problem


def create_app() -> FastAPI:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_view

    from include.platform import settings

    app = FastAPI(title="Reports", dependencies=[Depends(requires_access_view(AccessView.WEBSITE))],
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def reports_page(user: GetUserDep) -> HTMLResponse:
        cfg = settings.load()

        def streaming_card() -> page.Card:
            statuses, broker_problem = streaming_statuses(cfg.aws_conn_id)
            return page.streaming_card(statuses, broker_problem)

        built = [
            _card("energy", "NRT energy x weather", "the energy analysis's charts and metrics",
                  lambda: page.energy_card(energy_run(cfg.lake_uri, cfg.aws_conn_id))),
            _card("air-quality", "Air quality: daily AQI per station", "aq_daily_aqi",
                  lambda: page.air_quality_card(cards.aqi_series(_with_results_db(results_db.daily_aqi_rows)))),
            _card("access-logs", "Access logs: the day's six answers", "access_log_* tables",
                  lambda: page.access_logs_card(_access_log_day())),
            _card("streaming", "Streaming queries", "the streaming progress files", streaming_card),
        ]
        return HTMLResponse(page.render(built, user.get_name()),
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    @app.get("/" + page.AQI_CHART)
    def air_quality_chart() -> Response:
        series = cards.aqi_series(_with_results_db(lambda conn: results_db.daily_aqi_rows(conn, AQI_DAYS)))
        document = svg.line_chart([(s.station, s.points) for s in series],
                                  title=f"Daily National AQI per station (last {AQI_DAYS} days of data)",
                                  y_label="AQI", bands=svg.AQI_BANDS)
        return _image(document.encode(), ".svg")

    @app.get("/energy/charts/{run_date}/{name}")
    def energy_chart(run_date: str, name: str) -> Response:
        try:
            day = date.fromisoformat(run_date)
        except ValueError:
            raise HTTPException(404, "no such run date") from None
        if not energy.is_chart_name(name):
            raise HTTPException(404, "no such chart")
        cfg = settings.load()
        try:
            data = lake.read_bytes(f"{energy.charts_uri(cfg.lake_uri, day)}/{name}", cfg.aws_conn_id)
        except FileNotFoundError:
            raise HTTPException(404, "no such chart") from None
        return _image(data, name[name.rfind("."):].lower())

    return app


def _access_log_day() -> cards.AccessLogDay | None:
    found = _with_results_db(results_db.latest_access_log_day)
    return cards.access_log_day(*found) if found else None


def _image(data: bytes, suffix: str) -> Response:
    return Response(data, media_type=MEDIA_TYPES[suffix],
                    headers={"Content-Security-Policy": CHART_CSP, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, max-age=60"})
