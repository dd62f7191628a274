"""Airflow's own processes: api-server (UI and Execution API), scheduler, dag-processor, triggerer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from include.platform.stack.service import Service, StackConfig, StackError, http_ok

USER = "admin"
SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
BOOTSTRAP_DAG = "platform_bootstrap"


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


def trigger_bootstrap(cfg: StackConfig, env: dict[str, str]) -> bool:
    """Run ``platform_bootstrap`` again on every start after the first: it is ``@once``, so the
    topics, tables and keyspaces that new code declares would otherwise never be created on a
    stack that already ran (its steps are idempotent). On a first start the DAG is not in the
    metadata DB yet and its own ``@once`` run does the work: returns False then."""
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([airflow_bin(), "dags", "trigger", BOOTSTRAP_DAG], env=env, capture_output=True, text=True,
                          timeout=300)
    (cfg.log_dir / "airflow-trigger-bootstrap.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode == 0:
        return True
    if "not found" in (proc.stdout + proc.stderr).lower():
        return False
    raise StackError(f"triggering {BOOTSTRAP_DAG} failed (exit {proc.returncode}); see "
                     f"{cfg.log_dir / 'airflow-trigger-bootstrap.log'}")
