"""The Reports page's data functions on hand-made rows and files (include/reports/)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone

import pytest

from include.reports import cards, energy, lake, page, results_db, svg

# ----------------------------------------------------------------------------- air quality


def test_aqi_series_groups_by_station_orders_days_and_skips_missing_values():
    rows = [("Peenya", date(2024, 1, 2), 180), ("BTM", "2024-01-01", 90), ("Peenya", date(2024, 1, 1), 150),
            ("BTM", datetime(2024, 1, 3, 0, 0), None), ("BTM", date(2024, 1, 2), 101)]
    series = cards.aqi_series(rows)
    assert [s.station for s in series] == ["BTM", "Peenya"]
    assert series[0].points == ((date(2024, 1, 1), 90), (date(2024, 1, 2), 101))
    assert series[1].latest == (date(2024, 1, 2), 180)


def test_aqi_chart_is_an_svg_with_one_line_per_station_and_the_category_bands():
    series = cards.aqi_series([("A", date(2024, 1, d), 40 + 30 * d) for d in range(1, 6)] + [("B", date(2024, 1, 3), 75)])
    document = svg.line_chart([(s.station, s.points) for s in series], title="AQI", y_label="AQI", bands=svg.AQI_BANDS)
    root = ET.fromstring(document)
    ns = {"s": "http://www.w3.org/2000/svg"}
    lines = root.findall("s:polyline", ns)
    assert len(lines) == 1 and lines[0].find("s:title", ns).text == "A"
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert len(points) == 5
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # days left to right, AQI rising upwards
    assert root.find("s:circle", ns).find("s:title", ns).text == "B"  # a one-day station is a dot
    # peak 190 -> the axis ends at the Moderate band's top (200): Good, Satisfactory, Moderate drawn
    band_names = [r.find("s:title", ns).text for r in root.findall("s:rect", ns) if r.find("s:title", ns) is not None]
    assert band_names == ["Good", "Satisfactory", "Moderate"]


def test_chart_escapes_station_names_and_says_no_data_when_empty():
    document = svg.line_chart([("<script>x</script>", [(date(2024, 1, 1), 10), (date(2024, 1, 2), 20)])],
                              title="t & u", y_label="AQI")
    assert "<script>" not in document and "&lt;script&gt;" in document
    ET.fromstring(document)
    empty = svg.line_chart([], title="AQI", y_label="AQI")
    assert "no data" in empty
    ET.fromstring(empty)


# ----------------------------------------------------------------------------- access logs

SUMMARY = {
    "log_date": date(2024, 1, 15), "input_files": 2, "total_lines": 1000, "parsed_lines": 990, "quarantined_lines": 10,
    "unique_client_ips": 321, "status_200_requests": 800, "status_200_distinct_urls": 45,
    "client_error_responses": 150, "large_responses": 77, "large_response_min_bytes": 5000,
    "most_requested_url": "/index.html", "most_requested_url_requests": 120,
    "most_404_url": "/missing", "most_404_url_responses": 33,
}


def test_access_log_day_gives_the_six_answers_in_order():
    day = cards.access_log_day(SUMMARY, [(2, "10.0.0.2", 40), (1, "10.0.0.1", 50)], [(404, 100), (400, 50)])
    assert day.log_date == date(2024, 1, 15)
    assert [a for _, a in day.answers] == ["321", "800 (45 URLs)", "150", "77", "/index.html (120 requests)",
                                           "/missing (33 responses)"]
    assert day.answers[3][0] == "Responses over 5,000 bytes"
    assert day.top_clients == (("10.0.0.1", 50), ("10.0.0.2", 40))
    assert day.client_errors_by_status == ((400, 50), (404, 100))


def test_access_log_day_without_404s_says_none():
    day = cards.access_log_day({**SUMMARY, "most_404_url": None, "most_404_url_responses": 0}, [], [])
    assert day.answers[5] == ("URL with the most 404s", "none")


# ----------------------------------------------------------------------------- streaming

NOW_MS = 1_733_133_600_000  # 2024-12-02T10:00:00Z


def _progress(name, written_ms, offsets, batch_timestamp=None, rate=12.5):
    return {"name": name, "batch_id": 7, "batch_timestamp": batch_timestamp, "written_at_ms": written_ms,
            "input_rows_per_second": rate, "processed_rows_per_second": 2 * rate,
            "sources": [{"description": "KafkaV2[Subscribe[t]]", "end_offset": json.dumps(offsets) if offsets else None}]}


def test_query_statuses_count_lag_per_partition_and_list_missing_queries():
    progress = {
        "json_to_protobuf": [_progress("metrics_json_to_protobuf", NOW_MS - 30_000, {"metric-message": {"0": 10, "1": 4}},
                                       batch_timestamp="2024-12-02T09:59:20.000Z")],
        "extra_job": [_progress("extra_query", NOW_MS - 5_000, None)],
    }
    expected = {"json_to_protobuf": ["metrics_json_to_protobuf"], "weather": ["weather_observations"]}
    ends = {("metric-message", 0): 15, ("metric-message", 1): 4}
    statuses = {(s.job, s.query): s for s in cards.query_statuses(progress, expected, ends, NOW_MS)}
    assert set(statuses) == {("json_to_protobuf", "metrics_json_to_protobuf"), ("weather", "weather_observations"),
                             ("extra_job", "extra_query")}
    metrics = statuses["json_to_protobuf", "metrics_json_to_protobuf"]
    assert metrics.lag_records == 5  # (15 - 10) + (4 - 4)
    assert metrics.last_batch_at == datetime(2024, 12, 2, 9, 59, 20, tzinfo=timezone.utc)  # Spark's trigger time
    assert metrics.seconds_since_batch == pytest.approx(40.0)
    assert metrics.input_rows_per_second == 12.5 and metrics.processed_rows_per_second == 25.0
    assert statuses["weather", "weather_observations"].last_batch_at is None
    extra = statuses["extra_job", "extra_query"]
    assert extra.lag_records is None  # no Kafka source: lag does not apply
    assert extra.last_batch_at == datetime.fromtimestamp((NOW_MS - 5_000) / 1000, tz=timezone.utc)
    assert cards.kafka_partitions(p for ps in progress.values() for p in ps) == [("metric-message", 0), ("metric-message", 1)]


def test_lag_is_unknown_when_the_broker_did_not_answer():
    progress = {"j": [_progress("q", NOW_MS, {"t": {"0": 1}})]}
    [status] = cards.query_statuses(progress, {}, None, NOW_MS)
    assert status.lag_records is None
    card = page.streaming_card([status], "the broker did not answer (KafkaException: timed out)")
    assert "Lag unknown: the broker did not answer" in card.body


# ----------------------------------------------------------------------------- NRT energy


def test_energy_run_dates_are_the_date_folders_newest_first():
    assert energy.run_dates(["access_logs", "2026-12-01", "2026-12-03/", "2026-13-40", "latest"]) == [
        date(2026, 12, 3), date(2026, 12, 1)]
    assert energy.charts_uri("s3://lake/x/", date(2026, 12, 3)) == "s3://lake/x/reports/2026-12-03"
    assert energy.is_chart_name("scatter.png") and energy.is_chart_name("weekly.SVG")
    assert not energy.is_chart_name("../secret.png") and not energy.is_chart_name(".hidden.png")
    assert not energy.is_chart_name("model.json")


def test_latest_energy_run_takes_the_newest_date_with_charts_or_metrics():
    assert cards.latest_energy_run({}, []) is None
    assert cards.latest_energy_run({date(2026, 12, 3): []}, []) is None  # an empty folder is no run
    metrics = {"run_date": date(2026, 12, 2), "rmse": 0.41, "mae": 0.3, "r2": 0.87}
    run = cards.latest_energy_run({date(2026, 12, 1): ["b.png", "a.png"], date(2026, 12, 2): ["s.svg"]}, [metrics])
    assert run.run_date == date(2026, 12, 2) and run.charts == ("s.svg",) and run.metrics is metrics
    older_metrics = cards.latest_energy_run({date(2026, 12, 3): ["a.png"]}, [metrics])
    assert older_metrics.run_date == date(2026, 12, 3) and older_metrics.metrics is None


def test_energy_card_without_a_run_says_so_and_names_where_it_will_read():
    card = page.energy_card(None)
    assert card.state == "empty"
    assert "No analysis run yet" in card.body
    assert energy.REGRESSION_RUNS_TABLE in card.body and "reports/" in card.body


def test_energy_card_links_each_chart_and_shows_the_metrics():
    run = cards.EnergyRun(date(2026, 12, 2), ("daily profile.png",), {"rmse": 0.4123, "mae": 0.3, "r2": 0.87})
    body = page.energy_card(run).body
    assert 'src="energy/charts/2026-12-02/daily%20profile.png"' in body
    assert "0.412" in body and "0.870" in body


# ----------------------------------------------------------------------------- lake (file://)


def test_lake_lists_folders_and_files_and_reads_bytes(tmp_path):
    (tmp_path / "reports" / "2026-12-02").mkdir(parents=True)
    (tmp_path / "reports" / "2026-12-02" / "scatter.png").write_bytes(b"\x89PNG")
    (tmp_path / "reports" / "note.txt").write_text("x")
    assert lake.list_folder((tmp_path / "reports").as_uri()) == (["2026-12-02"], ["note.txt"])
    assert lake.list_folder((tmp_path / "nowhere").as_uri()) == ([], [])
    assert lake.read_bytes((tmp_path / "reports" / "2026-12-02" / "scatter.png").as_uri()) == b"\x89PNG"
    with pytest.raises(FileNotFoundError):
        lake.read_bytes((tmp_path / "missing.png").as_uri())


# ----------------------------------------------------------------------------- page


def test_page_escapes_values_and_marks_each_card():
    cards_ = [page.error_card("streaming", "Streaming queries", "progress", RuntimeError("<b>down</b>")),
              page.air_quality_card([])]
    html = page.render(cards_, "<admin>")
    assert "&lt;b&gt;down&lt;/b&gt;" in html and "&lt;admin&gt;" in html
    assert 'id="card-streaming" data-state="error"' in html and 'id="card-air-quality" data-state="empty"' in html


# ----------------------------------------------------------------------------- results database (real MariaDB)


@pytest.fixture
def results_conn(fresh_results_db):
    conn = fresh_results_db.connect(autocommit=True)
    yield conn
    conn.close()


def test_queries_read_no_rows_from_tables_that_do_not_exist_yet(results_conn):
    assert results_db.daily_aqi_rows(results_conn) == []
    assert results_db.latest_access_log_day(results_conn) is None
    assert results_db.energy_regression_runs(results_conn) == []


def test_queries_read_the_newest_day_and_window(results_conn):
    with results_conn.cursor() as cur:
        cur.execute("CREATE TABLE aq_daily_aqi (station VARCHAR(64), day DATE, aqi INT)")
        cur.executemany("INSERT INTO aq_daily_aqi VALUES (%s, %s, %s)",
                        [("A", "2024-01-01", 50), ("A", "2024-03-30", 120), ("B", "2024-03-31", 80)])
        cur.execute("CREATE TABLE access_log_daily_summary (log_date DATE, unique_client_ips BIGINT)")
        cur.executemany("INSERT INTO access_log_daily_summary VALUES (%s, %s)", [("2024-01-14", 1), ("2024-01-15", 2)])
        cur.execute("CREATE TABLE access_log_top_clients (log_date DATE, rank_no INT, client_ip VARCHAR(64), requests BIGINT)")
        cur.executemany("INSERT INTO access_log_top_clients VALUES (%s, %s, %s, %s)",
                        [("2024-01-15", 2, "10.0.0.2", 5), ("2024-01-15", 1, "10.0.0.1", 9), ("2024-01-14", 1, "x", 1)])
        cur.execute("CREATE TABLE access_log_4xx_by_status (log_date DATE, status INT, responses BIGINT)")
        cur.execute("INSERT INTO access_log_4xx_by_status VALUES ('2024-01-15', 404, 3)")
        cur.execute(f"CREATE TABLE {energy.REGRESSION_RUNS_TABLE} (run_date DATE, rmse DOUBLE, r2 DOUBLE)")
        cur.executemany(f"INSERT INTO {energy.REGRESSION_RUNS_TABLE} VALUES (%s, %s, %s)",
                        [("2026-12-01", 0.5, 0.8), ("2026-12-02", 0.4, 0.9)])
    # 30 days back from the newest day (2024-03-31): January's row is out
    assert results_db.daily_aqi_rows(results_conn, days=30) == [("A", date(2024, 3, 30), 120), ("B", date(2024, 3, 31), 80)]
    summary, clients, errors = results_db.latest_access_log_day(results_conn)
    assert summary == {"log_date": date(2024, 1, 15), "unique_client_ips": 2}
    assert clients == [(1, "10.0.0.1", 9), (2, "10.0.0.2", 5)] and errors == [(404, 3)]
    runs = results_db.energy_regression_runs(results_conn)
    assert [r["run_date"] for r in runs] == [date(2026, 12, 2), date(2026, 12, 1)] and runs[0]["r2"] == 0.9


def test_lake_on_s3_through_the_aws_connection(moto_server, monkeypatch):
    """s3:// and s3a:// lakes go through the Airflow connection (here moto's, as the stack sets it)."""
    import boto3

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"}}))
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="reports-lake")
    for key, body in (("lake/reports/2026-12-02/scatter.png", b"\x89PNG"), ("lake/reports/2026-12-01/a.svg", b"<svg/>"),
                      ("lake/reports/readme.txt", b"x")):
        s3.put_object(Bucket="reports-lake", Key=key, Body=body)
    for scheme in ("s3", "s3a"):
        assert lake.list_folder(f"{scheme}://reports-lake/lake/reports") == (["2026-12-01", "2026-12-02"], ["readme.txt"])
        assert lake.read_bytes(f"{scheme}://reports-lake/lake/reports/2026-12-02/scatter.png") == b"\x89PNG"
    assert lake.list_folder("s3://reports-lake/lake/nowhere") == ([], [])
    with pytest.raises(FileNotFoundError):
        lake.read_bytes("s3://reports-lake/lake/reports/2026-12-02/missing.png")


def test_the_streaming_card_expects_every_supervised_job():
    import importlib
    from pathlib import Path

    from include.reports.app import expected_queries

    root = Path(__file__).resolve().parents[2]
    declared = {}
    for path in sorted((root / "include" / "streaming").glob("*_jobs.py")):
        declared.update(getattr(importlib.import_module(f"include.streaming.{path.stem}"), "QUERIES", {}))
    assert {"app_events", "energy_weather", "weather"} <= set(declared)
    assert expected_queries() == declared
