"""turnstile_streaming_health announces new window files as the `turnstile_windows` Asset (which
turnstile_warehouse is scheduled on, with its daily time): once per new batch of the ridership query,
skipped while the job has committed nothing new. Run with ``dag.test()`` on hand-made progress files."""
from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKER = "127.0.0.1:9"  # no offsets in the progress: no lag to ask a broker for


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"dag_{path.stem}_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _progress(folder: Path, batch_id: int) -> None:
    for name in ("turnstile_ridership", "turnstile_dead_letters"):
        (folder / f"{name}.json").write_text(json.dumps({
            "name": name, "batch_id": batch_id, "written_at_ms": int(time.time() * 1000),
            "input_rows_per_second": 1.0, "processed_rows_per_second": 1.0, "sources": []}))


def _asset_events(uri: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(AssetEvent).join(
            AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri))


def test_new_ridership_batches_are_announced_once(airflow_db, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": BROKER}}))
    health_dag = _load(ROOT / "dags" / "streaming" / "turnstile_streaming_health.py")
    warehouse_dag = _load(ROOT / "dags" / "turnstile" / "turnstile_warehouse.py").dag
    # The job's status folder here, never the user's lake.
    monkeypatch.setattr(health_dag, "STATUS", (tmp_path / "status").as_uri())
    folder = tmp_path / "status" / "turnstile"
    folder.mkdir(parents=True)
    from include.streaming.assets import turnstile_windows

    assert [a.name for a in warehouse_dag.timetable.asset_condition.objects] == [turnstile_windows.name]
    before = _asset_events(turnstile_windows.uri)

    def announce_state() -> str:
        run = health_dag.dag.test()
        return {ti.task_id: ti.state for ti in run.get_task_instances()}["announce_new_windows"]

    _progress(folder, batch_id=3)
    assert announce_state() == "success"
    assert announce_state() == "skipped"  # nothing committed since batch 3
    _progress(folder, batch_id=4)
    assert announce_state() == "success"
    assert _asset_events(turnstile_windows.uri) == before + 2
