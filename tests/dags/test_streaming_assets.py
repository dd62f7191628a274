"""The streaming health DAGs announce their job's new lake files as an Asset, which the batch DAG
downstream is scheduled on (with its daily time): turnstile_streaming_health emits
`turnstile_windows` (turnstile_warehouse), energy_weather_streaming_health emits `energy_joined`
(energy_analysis). Once per new batch of the writing query, skipped while the job has committed
nothing new. Run with ``dag.test()`` on hand-made progress files."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKER = "127.0.0.1:9"  # no offsets in the progress: no lag to ask a broker for

# health DAG, its announcing task, the job's status folder and queries (the first writes the
# files), the DAG scheduled on the Asset, the Asset
CASES = {
    "turnstile": ("streaming/turnstile_streaming_health.py", "announce_new_windows", "turnstile",
                  ("turnstile_ridership", "turnstile_dead_letters"), "turnstile/turnstile_warehouse.py",
                  "include.streaming.assets:turnstile_windows"),
    "energy": ("streaming/energy_weather_streaming_health.py", "announce_new_joins", "energy_weather",
               ("energy_joined", "energy_unmatched", "energy_dead_letters"), "energy/energy_analysis.py",
               "include.energy.jobs:energy_joined"),
}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"dag_{path.stem}_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _progress(folder: Path, queries, batch_id: int) -> None:
    for name in queries:
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


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_batches_are_announced_once(case, airflow_db, tmp_path, monkeypatch):
    health_file, task_id, job, queries, downstream_file, asset_ref = CASES[case]
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": BROKER}}))
    health_dag = _load(ROOT / "dags" / health_file)
    downstream_dag = _load(ROOT / "dags" / downstream_file).dag
    # The job's status folder here, never the user's lake.
    monkeypatch.setattr(health_dag, "STATUS", (tmp_path / "status").as_uri())
    folder = tmp_path / "status" / job
    folder.mkdir(parents=True)
    module, name = asset_ref.split(":")
    asset = getattr(importlib.import_module(module), name)

    assert [a.name for a in downstream_dag.timetable.asset_condition.objects] == [asset.name]
    assert [o.name for o in health_dag.dag.get_task(task_id).outlets] == [asset.name]
    before = _asset_events(asset.uri)

    def announce_state() -> str:
        run = health_dag.dag.test()
        return {ti.task_id: ti.state for ti in run.get_task_instances()}[task_id]

    _progress(folder, queries, batch_id=3)
    assert announce_state() == "success"
    assert announce_state() == "skipped"  # nothing committed since batch 3
    _progress(folder, queries, batch_id=4)
    assert announce_state() == "success"
    assert _asset_events(asset.uri) == before + 2
