"""The WebSocket service as the stack and the DAG start it: a process of its own that sends a
JSON sample per interval with consecutive seqs, every Nth malformed; started by the DAG's task
when nothing listens on the URL's port, stopped like every service."""
from __future__ import annotations

import json

from include.platform import stack
from include.platform.stack import free_port, websocket


def test_registered_as_a_stack_service():
    assert websocket in stack.SERVICES and "websocket" in stack.status(stack.StackConfig())


def test_the_dag_task_starts_it_and_it_sends_samples(tmp_path, monkeypatch):
    from websockets.sync.client import connect

    monkeypatch.setenv("DP_HOME", str(tmp_path))
    monkeypatch.setenv("DP_WEBSOCKET_INTERVAL_S", "0.1")
    monkeypatch.setenv("DP_WEBSOCKET_BAD_EVERY", "5")
    url = f"ws://127.0.0.1:{free_port()}"
    cfg = stack.StackConfig()
    try:
        assert websocket.ensure_reachable(url) == url
        assert stack.running_pid(cfg, "websocket")
        assert websocket.ensure_reachable(url) == url  # running: left alone
        with connect(url, open_timeout=10) as ws:
            messages = [ws.recv(timeout=10) for _ in range(12)]
    finally:
        stack.stop_service(cfg, "websocket")
    parsed = []
    for text in messages:
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError:
            parsed.append(None)  # the truncated kind of malformed message
    seqs = [p["seq"] for p in parsed if p and "seq" in p]
    good = [p for p in parsed if p and set(p) == {"process_time_ms", "threadname", "memory_used_mb", "event_time",
                                                    "seq", "run_id"} and isinstance(p["process_time_ms"], int)]
    assert len(good) >= 8 and all(p["event_time"].endswith("Z") for p in good)
    assert all(b - a >= 1 for a, b in zip(seqs, seqs[1:]))
    assert {p["threadname"] for p in good} <= set(websocket.THREADS)
    assert all(p["seq"] % 5 for p in good)  # every 5th is malformed
    assert len({p["run_id"] for p in good}) == 1
    assert not stack.running_pid(cfg, "websocket")
