"""The weather producer: replay of the recorded responses (bytes, keys, timestamps, pacing), the
free plan's rate limit, backoff on 429/5xx against a real local HTTP server standing in for
OpenWeatherMap, and delivery to the real broker."""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from include.producers import weather as producer

KEY = "test-key-do-not-log-0123456789"


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def recorded_file_lines() -> list[bytes]:
    return [line for line in (producer.RECORDED_DIR / "dublin_ca_current.jsonl").read_bytes().splitlines() if line]


def test_replayed_responses_are_the_recorded_json_without_the_scrapers_key():
    lines = producer.load_recorded()
    assert len(lines) == 300 and lines == recorded_file_lines()
    for line in lines[:50]:
        event = producer.replay_event(line)
        assert event.key == b"5344157"
        stamp = json.loads(line)[producer.SCRAPER_KEY]
        assert event.value == line.replace(f',"{producer.SCRAPER_KEY}":"{stamp}"'.encode(), b"")
        assert producer.SCRAPER_KEY not in json.loads(event.value)


def test_now_timestamps_stamp_the_send_time_once_per_city_and_move_sunrise_and_sunset():
    clock = {"t": 1_800_000_000.4}
    restamp = producer.Restamper(now=lambda: clock["t"])
    lines = producer.load_recorded()
    first, second, third = (json.loads(producer.replay_event(line, restamp).value) for line in lines[:3])
    originals = [json.loads(line) for line in lines[:3]]
    assert [first["dt"], second["dt"], third["dt"]] == [1_800_000_000, 1_800_000_001, 1_800_000_002]  # same second
    for sent, original in zip((first, second, third), originals):
        delta = sent["dt"] - original["dt"]
        assert sent["sys"]["sunrise"] - original["sys"]["sunrise"] == delta
        assert sent["sys"]["sunset"] - original["sys"]["sunset"] == delta
        assert sent["main"] == original["main"] and sent["weather"] == original["weather"]
    clock["t"] += 60
    other = dict(originals[0], id=42)
    assert restamp(dict(other))["dt"] == 1_800_000_060
    assert json.loads(producer.replay_event(lines[3], restamp).value)["dt"] == 1_800_000_060


def test_rate_limiter_never_exceeds_60_calls_in_any_minute():
    clock = FakeClock()
    limiter = producer.RateLimiter(60, 60.0, clock, clock.sleep)
    times = []
    for _ in range(150):
        limiter.acquire()
        times.append(clock.now)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60) <= 60
    assert times[59] == times[0] and times[60] == times[0] + 60 and times[120] == times[0] + 120


def test_backoff_doubles_to_a_cap_and_honours_retry_after():
    assert [producer.backoff_s(a) for a in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert producer.backoff_s(0, {"Retry-After": "7"}) == 7.0
    assert producer.backoff_s(3, {"retry-after": "soon"}) == 8  # not a number: ignored


class FakeOpenWeather:
    """A real HTTP server answering /data/2.5/weather with scripted (status, body, headers)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                fake.requests.append({"path": url.path, **{k: v[0] for k, v in parse_qs(url.query).items()}})
                status, body, headers = fake.script.pop(0) if fake.script else (500, b"{}", {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/data/2.5/weather"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api():
    servers = []

    def make(script):
        server = FakeOpenWeather(script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_poll_backs_off_on_429_and_5xx_then_returns_the_body_unchanged(fake_api, caplog):
    body = recorded_file_lines()[0]
    api = fake_api([(429, b'{"cod":429}', {"Retry-After": "3"}), (503, b"", {}), (200, body, {})])
    clock = FakeClock()
    report = producer.LiveReport(topic="t")
    limiter = producer.RateLimiter(60, 60.0, clock, clock.sleep)
    with caplog.at_level(logging.DEBUG):
        got = producer.poll_city(5344157, KEY, limiter, report, api.url, clock.sleep)
    assert got == body
    assert clock.sleeps == [3.0, 2.0]  # Retry-After, then the second step of the doubling
    assert (report.calls, report.retried) == (3, 2)
    assert api.requests[0] == {"path": "/data/2.5/weather", "id": "5344157", "appid": KEY, "units": "metric"}
    assert KEY not in caplog.text


def test_poll_gives_up_skips_unknown_cities_and_stops_on_a_refused_key(fake_api, caplog):
    clock = FakeClock()
    limiter = producer.RateLimiter(60, 60.0, clock, clock.sleep)
    report = producer.LiveReport(topic="t")
    api = fake_api([(500, b"{}", {})] * producer.MAX_ATTEMPTS + [(404, b'{"cod":"404"}', {}),
                                                                 (401, b'{"cod":401}', {})])
    with caplog.at_level(logging.DEBUG):
        assert producer.poll_city(1, KEY, limiter, report, api.url, clock.sleep) is None
        assert clock.sleeps == [1, 2, 4, 8, 16]
        assert producer.poll_city(2, KEY, limiter, report, api.url, clock.sleep) is None
        with pytest.raises(producer.ApiKeyRejected) as refused:
            producer.poll_city(3, KEY, limiter, report, api.url, clock.sleep)
    assert report.skipped == {"1:gave_up_after_500": 1, "2:http_404": 1}
    assert KEY not in str(refused.value) and KEY not in caplog.text


def test_live_rounds_publish_each_city_keyed_by_id(fake_api, kafka_broker):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=2)
    london = json.dumps({"id": 2643743, "dt": 1, "name": "London", "cod": 200}).encode()
    dublin = recorded_file_lines()[0]
    api = fake_api([(200, dublin, {}), (200, london, {}), (429, b"", {"Retry-After": "0"}), (200, dublin, {}),
                    (200, london, {})])
    clock = FakeClock()
    report = producer.run_live(kafka_broker.bootstrap, topic, [5344157, 2643743], KEY, interval_s=600, rounds=2,
                               base_url=api.url, clock=clock, sleep=clock.sleep)
    assert (report.rounds, report.calls, report.retried, report.produce.delivered) == (2, 5, 1, 4)
    assert clock.sleeps == [600.0, 0.0]  # the interval from round start to round start, then the Retry-After
    records = kafka_broker.consume_all(topic, partitions=2)
    assert sorted((r.key(), r.value()) for r in records) == sorted(
        [(b"5344157", dublin), (b"2643743", london)] * 2)
    assert [r["id"] for r in api.requests] == ["5344157", "2643743", "5344157", "5344157", "2643743"]


def test_live_needs_a_key(monkeypatch):
    monkeypatch.delenv(producer.API_KEY_ENV, raising=False)
    with pytest.raises(ValueError, match="OPENWEATHER_API_KEY"):
        producer.run_live("127.0.0.1:1", rounds=1)


def test_replay_publishes_every_recorded_response_to_the_broker(kafka_broker):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=3)
    report = producer.run_replay(kafka_broker.bootstrap, topic, rate=100_000)
    assert (report.produced, report.delivered, report.failed) == (300, 300, 0)
    records = kafka_broker.consume_all(topic, partitions=3)
    assert {r.key() for r in records} == {b"5344157"}
    assert len({r.partition() for r in records}) == 1  # one city, one partition: its order is kept
    assert [r.value() for r in sorted(records, key=lambda r: r.offset())] == [
        producer.replay_event(line).value for line in recorded_file_lines()]


def test_replay_paces_at_the_rate_loops_and_restamps(kafka_broker):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=1)
    clock = FakeClock()
    wall = {"t": 1_900_000_000.0}
    report = producer.run_replay(kafka_broker.bootstrap, topic, rate=2.0, count=305, loop=True, timestamps="now",
                                 clock=clock, sleep=clock.sleep, now=lambda: wall["t"])
    assert report.delivered == 305
    assert clock.now - 1000.0 == pytest.approx(304 / 2.0)  # the last one is due 152 s after the first
    dts = [json.loads(r.value())["dt"] for r in kafka_broker.consume_all(topic, partitions=1)]
    assert dts == [1_900_000_000 + i for i in range(305)]  # the (frozen) wall clock, made unique per city


def test_replay_never_creates_its_topic(kafka_broker):  # noqa: F811
    with pytest.raises(producer.TopicMissing, match="platform_bootstrap"):
        producer.run_replay(kafka_broker.bootstrap, "weather-raw-missing-topic", count=1)


def test_cli_replays_without_a_key(kafka_broker, monkeypatch, capsys):  # noqa: F811
    monkeypatch.delenv(producer.API_KEY_ENV, raising=False)
    topic = kafka_broker.create_topic(partitions=1)
    result = producer.main(["--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--rate", "1000", "--count", "7"])
    assert result["mode"] == "replay" and result["delivered"] == 7
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["delivered"] == 7
