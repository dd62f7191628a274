"""The platform's WebSocket service: thread samples as JSON, one message every ``interval`` seconds.

Every message is broadcast to every connected client::

    {"process_time_ms": 61, "threadname": "thread1", "memory_used_mb": 61.0,
     "event_time": "2026-01-01T00:00:00.000Z", "seq": 17, "run_id": "4f1c..."}

``seq`` counts the messages of one server run (1, 2, ...; ``run_id`` is new at every start), so
a client can see what it missed: the server keeps no buffer, and a message sent while no client
was connected is gone (README "WebSocket pipeline": what a WebSocket can and cannot guarantee).
``--bad-every N`` makes every Nth message malformed (the demo's dead letters).

    python -m include.platform.stack.websocket --port 8765 --interval 30

`dp up` starts it as a service of the embedded stack (:func:`service`, port ``DP_WEBSOCKET_PORT``,
default 8765, interval ``DP_WEBSOCKET_INTERVAL_S``, default 30 s); the WebSocket DAG starts it
too when it is not running (:func:`ensure_reachable`). Samples are drawn from a seeded generator
(:func:`sample`), so a test can compute what a run of the server sends.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import uuid
from datetime import datetime, timezone

from include.platform.stack.service import Service, StackConfig, port_open

DEFAULT_PORT = 8765
DEFAULT_INTERVAL_S = 30.0
THREADS = ("thread1", "thread2", "thread3")


def port(cfg: StackConfig | None = None) -> int:
    """``DP_WEBSOCKET_PORT`` (default 8765) for the user's stack; a private stack (another
    ``home``: tests, benchmarks, several at once) gets a free port, kept in its home."""
    explicit = getattr(cfg, "websocket_port", None) or os.environ.get("DP_WEBSOCKET_PORT")
    if explicit:
        return int(explicit)
    from include.platform.settings import default_home

    if cfg is None or cfg.home == default_home():
        return DEFAULT_PORT
    from include.platform.stack.service import free_port

    kept = cfg.home / "websocket.port"
    if not kept.exists():
        cfg.home.mkdir(parents=True, exist_ok=True)
        kept.write_text(str(free_port()))
    return int(kept.read_text())


def url(cfg: StackConfig | None = None, host: str = "127.0.0.1") -> str:
    return f"ws://{host}:{port(cfg)}"


def sample(rng: random.Random, seq: int, run_id: str, now: datetime, threads=THREADS) -> dict:
    """One message: a thread (in turn) with a process time and the memory it uses.

    Each thread has its own typical memory (``60 + 20 * i`` MB) and process time; both vary
    per sample, so per-thread averages, minimums and maximums differ."""
    index = (seq - 1) % len(threads)
    return {
        "process_time_ms": max(1, int(rng.gauss(40 + 10 * index, 12))),
        "threadname": threads[index],
        "memory_used_mb": round(max(1.0, rng.gauss(60 + 20 * index, 8)), 1),
        "event_time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "seq": seq,
        "run_id": run_id,
    }


def malformed(seq: int, run_id: str) -> str:
    """A message the ingest job must dead-letter: by turns not JSON, a missing field, a wrong type."""
    kind = seq % 3
    if kind == 0:
        return '{"threadname": "thread1", "process_time_ms": 12'  # truncated
    if kind == 1:
        return json.dumps({"threadname": "thread2", "seq": seq, "run_id": run_id})  # fields missing
    return json.dumps({"process_time_ms": "fast", "threadname": "thread3", "memory_used_mb": 1,
                       "event_time": "2026-01-01T00:00:00Z", "seq": seq, "run_id": run_id})


async def serve(host: str, port_number: int, interval_s: float, seed: int | None, bad_every: int,
                count: int | None = None, started=None, wait_for_client: bool = False) -> None:
    """Serve until cancelled (or until ``count`` messages were sent, then close the clients).
    ``wait_for_client``: send nothing before the first client is connected (benchmarks)."""
    import websockets

    rng = random.Random(seed)
    run_id = uuid.uuid4().hex
    clients: set = set()
    first_client = asyncio.Event()

    async def handler(connection):
        clients.add(connection)
        first_client.set()
        try:
            await connection.wait_closed()  # clients only listen
        finally:
            clients.discard(connection)

    async with websockets.serve(handler, host, port_number, ping_interval=20, ping_timeout=20):
        if started is not None:
            started.set()
        if wait_for_client:
            await first_client.wait()
        seq = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while count is None or seq < count:
            seq += 1
            now = datetime.now(timezone.utc)
            if bad_every and seq % bad_every == 0:
                message = malformed(seq, run_id)
                rng.random()  # the good samples stay the same with or without bad ones
            else:
                message = json.dumps(sample(rng, seq, run_id, now))
            websockets.broadcast(clients, message)
            next_at += interval_s
            delay = next_at - loop.time()
            if delay > 0 or seq % 100 == 0:  # at full speed, still let the connections write
                await asyncio.sleep(max(0.0, delay))
        for connection in list(clients):
            await connection.close()


def service(cfg: StackConfig) -> Service:
    interval = os.environ.get("DP_WEBSOCKET_INTERVAL_S") or str(DEFAULT_INTERVAL_S)
    bad_every = os.environ.get("DP_WEBSOCKET_BAD_EVERY") or "0"
    number = port(cfg)
    from include.platform.settings import REPO_ROOT

    return Service(
        name="websocket",
        # main() called, not `-m` on this module: the package's __init__ imports it already.
        argv=[sys.executable, "-c", "import sys; from include.platform.stack.websocket import main; "
              "sys.exit(main(sys.argv[1:]))", "--host", "127.0.0.1", "--port", str(number),
              "--interval", interval, "--bad-every", bad_every],
        ready=lambda: port_open(number),
        ports=(number,),
        timeout=30,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))},
        port_setting="DP_WEBSOCKET_PORT",
    )


def ensure_reachable(target_url: str, timeout_s: float = 5.0) -> str:
    """The WebSocket DAG's first task: a URL on this machine is started when nothing listens
    there (the embedded stack's service, on the URL's port); any other URL must answer."""
    from urllib.parse import urlparse

    parsed = urlparse(target_url)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise ValueError(f"DP_WEBSOCKET_URL must look like ws://host:port, not {target_url!r}")
    number = parsed.port or (443 if parsed.scheme == "wss" else 80)
    if port_open(number, parsed.hostname, timeout=timeout_s):
        return target_url
    if parsed.hostname in ("127.0.0.1", "localhost"):
        from include.platform.stack.service import start_service

        cfg = StackConfig()
        previous = os.environ.get("DP_WEBSOCKET_PORT")
        os.environ["DP_WEBSOCKET_PORT"] = str(number)
        try:
            start_service(cfg, service(cfg), dict(os.environ))
        finally:
            if previous is None:
                os.environ.pop("DP_WEBSOCKET_PORT", None)
            else:
                os.environ["DP_WEBSOCKET_PORT"] = previous
        return target_url
    raise ConnectionError(f"the WebSocket at {target_url} does not answer (DP_WEBSOCKET_URL)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the platform's WebSocket service (thread samples as JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="seconds between messages")
    parser.add_argument("--seed", type=int, help="seed of the samples (default: random)")
    parser.add_argument("--bad-every", type=int, default=0, help="every Nth message malformed (0: none)")
    parser.add_argument("--count", type=int, help="stop after this many messages")
    parser.add_argument("--wait-for-client", action="store_true", help="send nothing before a client connects")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.interval, args.seed, args.bad_every, args.count,
                          wait_for_client=args.wait_for_client))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
