"""A private Airflow api-server with the Reports plugin, for the page's HTTP and browser tests.

Started the way `dp up` starts the stack's (include/platform/stack: the same environment, the same
SimpleAuthManager with its generated password file, the repo's plugins folder), on free ports,
with a throwaway SQLite metadata DB, a scratch results database of its own and a file:// lake in a
temporary folder. The session Kafka broker answers the lag question."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from include.platform import stack
from include.platform.scratch_db import create_scratch_db, drop_scratch_db
from include.platform.stack import airflow, postgres
from include.reports import energy
from spark_apps.common.mysql import ResultsDb

REPORTS_TOPIC = "reports-page-test"
# The hand-made data the page must show (tests/plugins/test_reports_page.py checks each value).
AQI_STATIONS = ("Peenya", "BTM Layout")
AQI_FIRST_DAY = date(2024, 3, 1)
AQI_DAYS = 20
TOPIC_RECORDS = 7
CONSUMED_OFFSET = 4  # the progress file says the query read up to here: lag 3


@dataclass(frozen=True)
class ReportsServer:
    url: str  # http://localhost:<port>, the api-server's [api] base_url
    cfg: stack.StackConfig
    env: dict
    results: ResultsDb

    @property
    def lake(self) -> Path:
        return self.cfg.lake_dir

    def password(self) -> str:
        value = airflow.password(self.cfg)
        assert value, f"the api-server wrote no password for {airflow.USER} to {self.cfg.passwords_file}"
        return value


def png(width: int, height: int) -> bytes:
    """A valid grey PNG (what the energy analysis will write with matplotlib), made by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


ENERGY_RUN_DATE = date(2026, 12, 2)
ENERGY_CHART = "energy_vs_temperature.png"


def write_energy_run(server: ReportsServer) -> bytes:
    """What the energy analysis writes for a run (idempotent): a chart in the lake's
    reports/<date>/, a file there that is no chart, and the run's metrics row. Returns the chart."""
    charts = server.lake / energy.REPORTS_DIR / ENERGY_RUN_DATE.isoformat()
    charts.mkdir(parents=True, exist_ok=True)
    chart = png(40, 30)
    (charts / ENERGY_CHART).write_bytes(chart)
    (charts / "model.json").write_text("{}")
    conn = server.results.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {energy.REGRESSION_RUNS_TABLE} (run_date DATE PRIMARY KEY, "
                        "rmse DOUBLE, mae DOUBLE, r2 DOUBLE, train_rows BIGINT, test_rows BIGINT, model_uri VARCHAR(255), "
                        "finished_at DATETIME)")
            cur.execute(f"REPLACE INTO {energy.REGRESSION_RUNS_TABLE} VALUES (%s, 0.4321, 0.3, 0.875, 700, 300, 'x', NOW())",
                        (ENERGY_RUN_DATE,))
    finally:
        conn.close()
    return chart


def clear_energy_run(server: ReportsServer) -> None:
    """Back to "the analysis never ran": no run folder, no metrics table."""
    shutil.rmtree(server.lake / energy.REPORTS_DIR / ENERGY_RUN_DATE.isoformat(), ignore_errors=True)
    conn = server.results.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {energy.REGRESSION_RUNS_TABLE}")
    finally:
        conn.close()


def _seed_results(db: ResultsDb) -> None:
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE aq_daily_aqi (station VARCHAR(255), day DATE, aqi INT, category VARCHAR(255))")
            cur.executemany("INSERT INTO aq_daily_aqi (station, day, aqi) VALUES (%s, %s, %s)",
                            [(station, AQI_FIRST_DAY + timedelta(days=i), 60 + 40 * s + 5 * i)
                             for s, station in enumerate(AQI_STATIONS) for i in range(AQI_DAYS)])
            cur.execute("CREATE TABLE access_log_daily_summary (log_date DATE, input_files BIGINT, total_lines BIGINT, "
                        "parsed_lines BIGINT, quarantined_lines BIGINT, unique_client_ips BIGINT, "
                        "status_200_requests BIGINT, status_200_distinct_urls BIGINT, client_error_responses BIGINT, "
                        "large_responses BIGINT, large_response_min_bytes BIGINT, most_requested_url VARCHAR(255), "
                        "most_requested_url_requests BIGINT, most_404_url VARCHAR(255), most_404_url_responses BIGINT)")
            cur.execute("INSERT INTO access_log_daily_summary VALUES ('2024-01-15', 2, 1000, 990, 10, 321, 800, 45, 150, "
                        "77, 5000, '/index.html', 120, '/missing.php', 33)")
            cur.execute("CREATE TABLE access_log_top_clients (log_date DATE, rank_no INT, client_ip VARCHAR(255), "
                        "requests BIGINT)")
            cur.execute("INSERT INTO access_log_top_clients VALUES ('2024-01-15', 1, '203.0.113.9', 50)")
            cur.execute("CREATE TABLE access_log_4xx_by_status (log_date DATE, status INT, responses BIGINT)")
            cur.execute("INSERT INTO access_log_4xx_by_status VALUES ('2024-01-15', 404, 100), ('2024-01-15', 403, 50)")
    finally:
        conn.close()


def _seed_streaming(lake: Path, bootstrap: str) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(REPORTS_TOPIC, 1, 1)])[REPORTS_TOPIC].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(TOPIC_RECORDS):
        producer.produce(REPORTS_TOPIC, value=str(i).encode())
    assert producer.flush(30) == 0
    status = lake / "streaming" / "_status" / "json_to_protobuf"
    status.mkdir(parents=True)
    now_ms = int(time.time() * 1000)
    (status / "metrics_json_to_protobuf.json").write_text(json.dumps({
        "name": "metrics_json_to_protobuf", "id": "q", "run_id": "r", "batch_id": 41, "batch_timestamp": None,
        "written_at_ms": now_ms - 12_000, "num_input_rows": 30, "input_rows_per_second": 3.25,
        "processed_rows_per_second": 9.5, "duration_ms": {},
        "sources": [{"description": "KafkaV2", "end_offset": json.dumps({REPORTS_TOPIC: {"0": CONSUMED_OFFSET}}),
                     "latest_offset": None}],
    }))


@pytest.fixture(scope="session")
def reports_server(tmp_path_factory, results_server, kafka_broker) -> ReportsServer:
    home = tmp_path_factory.mktemp("reports-home")
    cfg = stack.StackConfig(home=home, airflow_port=stack.free_port(), kafka_port=int(kafka_broker.bootstrap.rsplit(":", 1)[1]),
                            moto_port=stack.free_port(), metadata_db="sqlite", lake="file")
    for path in (cfg.airflow_home, cfg.lake_dir):
        path.mkdir(parents=True, exist_ok=True)
    results = create_scratch_db(results_server, "dp_reports")
    try:
        _seed_results(results)
        _seed_streaming(cfg.lake_dir, kafka_broker.bootstrap)
        results_url = f"mysql://{results.user}:{results.password}@{results.host}:{results.port}/{results.database}"
        env = {**os.environ, **stack.stack_environment(cfg, results_url, postgres.ensure(cfg))}
        migrate = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env,
                                 capture_output=True, text=True, timeout=600)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        api_server = airflow.services(cfg)[0]
        stack.start_service(cfg, api_server, env)
        try:
            yield ReportsServer(f"http://localhost:{cfg.airflow_port}", cfg, env, results)
        finally:
            stack.stop_service(cfg, api_server.name)
    finally:
        drop_scratch_db(results_server, results)
