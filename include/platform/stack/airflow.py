"""Airflow's own processes: api-server (UI and Execution API), scheduler, dag-processor, triggerer."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from include.platform.stack.service import Service, StackConfig, http_ok

USER = "admin"
SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def services(cfg: StackConfig) -> list[Service]:
    airflow = airflow_bin()
    health = f"http://127.0.0.1:{cfg.airflow_port}/api/v2/monitor/health"
    return [
        Service("airflow-api-server", [airflow, "api-server", "-H", "127.0.0.1", "-p", str(cfg.airflow_port), "-w", "1"],
                ready=lambda: http_ok(health), ports=(cfg.airflow_port,), timeout=120, port_setting="DP_AIRFLOW_PORT"),
        Service("airflow-scheduler", [airflow, "scheduler"], ready=lambda: True),
        Service("airflow-dag-processor", [airflow, "dag-processor"], ready=lambda: True),
        Service("airflow-triggerer", [airflow, "triggerer"], ready=lambda: True),
    ]


def password(cfg: StackConfig) -> str | None:
    try:
        return json.loads(cfg.passwords_file.read_text()).get(USER)
    except (OSError, ValueError):
        return None
