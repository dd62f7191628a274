"""The Reports page through a real Airflow api-server (tests/plugins/conftest.py): anonymous and
forged requests are refused by Airflow's own token check, a logged-in user gets the page with the
hand-made data, and the charts are served."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest
from conftest import AQI_STATIONS, CONSUMED_OFFSET, TOPIC_RECORDS, clear_energy_run, write_energy_run

from include.platform.stack import airflow

PAGE = "/reports/"
AQI_CHART = "/reports/charts/air_quality_daily_aqi.svg"


def token(server, password=None) -> str:
    reply = httpx.post(f"{server.url}/auth/token", json={"username": airflow.USER, "password": password or server.password()},
                       timeout=30)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()["access_token"]


def get(server, path, **kwargs) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=60, **kwargs)


@pytest.mark.parametrize("path", [PAGE, AQI_CHART, "/reports/energy/charts/2026-12-02/scatter.png"])
def test_anonymous_requests_are_refused(reports_server, path):
    reply = get(reports_server, path)
    assert reply.status_code == 401, reply.text
    assert "Reports" not in reply.text


def test_a_token_airflow_did_not_sign_is_refused(reports_server):
    claims = {"sub": airflow.USER, "role": "ADMIN", "aud": "apache-airflow", "iat": datetime.now(timezone.utc),
              "exp": datetime.now(timezone.utc) + timedelta(hours=1)}
    forged = jwt.encode(claims, "not-the-api-server-secret-" * 4, algorithm="HS512")
    assert get(reports_server, PAGE, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    assert get(reports_server, PAGE, cookies={"_token": forged}).status_code == 403


def test_a_wrong_password_gets_no_token(reports_server):
    reply = httpx.post(f"{reports_server.url}/auth/token", json={"username": airflow.USER, "password": "wrong"}, timeout=30)
    assert reply.status_code == 401


def test_a_logged_in_user_gets_the_page_with_every_card(reports_server):
    bearer = token(reports_server)
    by_header = get(reports_server, PAGE, headers={"Authorization": f"Bearer {bearer}"})
    # The UI's own session: the same JWT in the `_token` cookie the UI sets at login.
    by_cookie = get(reports_server, PAGE, cookies={"_token": bearer})
    for reply in (by_header, by_cookie):
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/html")
    html = by_cookie.text
    assert f"for {airflow.USER}" in html
    for card in ("energy", "air-quality", "access-logs", "streaming"):
        assert f'id="card-{card}"' in html
    assert 'data-state="error"' not in html, html
    # air quality: the chart and each station's latest day (2024-03-20: AQI 60 + 40 s + 5 * 19)
    assert 'src="charts/air_quality_daily_aqi.svg"' in html
    assert "<td>Peenya</td><td>2024-03-20</td><td class=num>155</td>" in html
    assert "<td>BTM Layout</td><td>2024-03-20</td><td class=num>195</td>" in html
    # access logs: the six answers of the hand-made day
    for answer in ("321", "800 (45 URLs)", "150", "77", "/index.html (120 requests)", "/missing.php (33 responses)"):
        assert f"<td>{answer}</td>" in html
    assert "203.0.113.9" in html
    # streaming: the progress file's rates and the lag the broker's end offset gives
    assert "metrics_json_to_protobuf" in html and "3.2" in html and "9.5" in html
    assert f"<td class=num>{TOPIC_RECORDS - CONSUMED_OFFSET}</td>" in html
    assert "weather_observations" in html and "no progress yet" in html  # an expected query with no progress


def test_the_aqi_chart_draws_each_station(reports_server):
    reply = get(reports_server, AQI_CHART, cookies={"_token": token(reports_server)})
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/svg+xml"
    assert "default-src 'none'" in reply.headers["content-security-policy"]
    root = ET.fromstring(reply.text)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert sorted(line.find("{http://www.w3.org/2000/svg}title").text for line in lines) == sorted(AQI_STATIONS)
    assert all(len(line.get("points").split()) == 20 for line in lines)


def test_energy_card_has_no_run_then_shows_the_run_the_analysis_writes(reports_server):
    cookies = {"_token": token(reports_server)}
    clear_energy_run(reports_server)  # the browser test may have written one
    assert "No analysis run yet" in get(reports_server, PAGE, cookies=cookies).text

    chart = write_energy_run(reports_server)

    html = get(reports_server, PAGE, cookies=cookies).text
    assert "No analysis run yet" not in html and "2026-12-02" in html
    assert 'src="energy/charts/2026-12-02/energy_vs_temperature.png"' in html and "model.json" not in html
    assert "0.432" in html and "0.875" in html
    served = get(reports_server, "/reports/energy/charts/2026-12-02/energy_vs_temperature.png", cookies=cookies)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png" and served.content == chart
    for missing in ("/reports/energy/charts/2026-12-02/model.json", "/reports/energy/charts/2026-12-02/nothing.png",
                    "/reports/energy/charts/not-a-date/energy_vs_temperature.png",
                    "/reports/energy/charts/2026-12-02/..%2F..%2Fstack.env"):
        assert get(reports_server, missing, cookies=cookies).status_code == 404, missing


def test_the_ui_lists_reports_in_its_navigation(reports_server):
    plugins = get(reports_server, "/api/v2/plugins", headers={"Authorization": f"Bearer {token(reports_server)}"}).json()
    [plugin] = [p for p in plugins["plugins"] if p["name"] == "dataplatform_reports"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/reports"
    [view] = plugin["external_views"]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == ("Reports", "reports/", "reports", "nav")
