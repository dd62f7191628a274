"""A streaming Python Data Source reading a WebSocket: ``spark.readStream.format("websocket")``.

No Spark connector for WebSockets exists, and a WebSocket is one ordered connection without
offsets, so this is a :class:`~pyspark.sql.datasource.SimpleDataSourceStreamReader` (Spark
4.0+; the same API on 4.2): it runs in the driver's Python streaming-source process, which
lives as long as the query, and needs no partition planning. A background thread holds the
connection (reconnecting with backoff) and appends every message to a buffer; each
micro-batch takes what arrived since the last one.

Offsets are ``{"session": <id of this reader>, "index": <messages received>}``. Spark keeps
them in the checkpoint, but the messages themselves live only in this process: after a
restart, a batch planned by the previous driver cannot be read again (``readBetweenOffsets``
of another session returns nothing) and everything the server sent while no reader was
connected is gone. That is what a WebSocket gives (README "WebSocket pipeline"); the
server's ``seq`` makes such losses visible, and the ingest job counts them.

Options: ``url`` (required), ``maxMessagesPerBatch`` (default 10,000), ``connectTimeout``
(seconds, default 10). Rows: ``idx`` (position in this reader's session), ``received_at``
(when the message arrived, UTC), ``payload`` (the text frame; binary frames are decoded as
UTF-8 with replacement).
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Iterator

from pyspark.sql.datasource import DataSource, SimpleDataSourceStreamReader

SCHEMA = "idx LONG, received_at TIMESTAMP, payload STRING"
NAME = "websocket"


class _Connection:
    """The reader's WebSocket client thread and its buffer (messages not yet committed)."""

    def __init__(self, url: str, connect_timeout: float):
        self.url = url
        self.connect_timeout = connect_timeout
        self.lock = threading.Lock()
        self.base = 0  # index of buffer[0]
        self.buffer: list[tuple[int, datetime, str]] = []
        self.received = 0
        self.connects = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"websocket-reader {url}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with connect(self.url, open_timeout=self.connect_timeout, max_size=2**20) as ws:
                    self.connects += 1
                    backoff = 0.5
                    while not self._stop.is_set():
                        try:
                            message = ws.recv(timeout=1.0)
                        except TimeoutError:
                            continue
                        if isinstance(message, bytes):
                            message = message.decode("utf-8", errors="replace")
                        with self.lock:
                            self.buffer.append((self.received, datetime.now(timezone.utc), message))
                            self.received += 1
            except (ConnectionClosed, OSError, TimeoutError) as exc:
                # The server went away or is not up yet: what it sends meanwhile is lost (seq gaps).
                self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._stop.wait(backoff):
                backoff = min(backoff * 2, 10.0)

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.connects:
            time.sleep(0.05)
        return bool(self.connects)

    def between(self, start: int, end: int) -> list[tuple[int, datetime, str]]:
        with self.lock:
            return [row for row in self.buffer[max(0, start - self.base):max(0, end - self.base)]]

    def drop_before(self, index: int) -> None:
        with self.lock:
            cut = max(0, index - self.base)
            del self.buffer[:cut]
            self.base += cut


class WebSocketStreamReader(SimpleDataSourceStreamReader):
    """Connects lazily, at the first offset Spark asks for: Spark also builds (and pickles) a
    reader in its planning process and ships it to executors, where it must neither connect
    nor carry the socket; only the driver's streaming-source process holds the connection."""

    def __init__(self, options: dict):
        url = options.get("url")
        if not url:
            raise ValueError("the websocket source needs .option('url', 'ws://host:port')")
        self.url = url
        self.max_per_batch = int(options.get("maxMessagesPerBatch", 10_000))
        self.connect_timeout = float(options.get("connectTimeout", 10))
        self._connection: _Connection | None = None
        self.session = ""

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_connection": None, "session": ""}

    @property
    def connection(self) -> _Connection:
        if self._connection is None:
            self.session = uuid.uuid4().hex
            self._connection = _Connection(self.url, self.connect_timeout)
            # The first micro-batch gets a connected socket when the server is up.
            self._connection.wait_connected(self.connect_timeout)
        return self._connection

    def _offset(self, index: int) -> dict:
        return {"session": self.session, "index": index}

    def initialOffset(self) -> dict:
        self.connection  # noqa: B018 - connect now: the session id is part of the offset
        return self._offset(0)

    def _start_index(self, start: dict) -> int:
        # An offset of an earlier session (the driver before a restart): its messages are gone,
        # start with everything this reader has.
        return int(start.get("index", 0)) if start.get("session") == self.session else self.connection.base

    def read(self, start: dict) -> tuple[Iterator[tuple], dict]:
        connection = self.connection
        begin = self._start_index(start)
        with connection.lock:
            end = min(connection.received, begin + self.max_per_batch)
        return iter(connection.between(begin, end)), self._offset(end)

    def readBetweenOffsets(self, start: dict, end: dict) -> Iterator[tuple]:
        if self._connection is None or end.get("session") != self.session:
            return iter([])  # planned by a previous driver: those messages died with it
        return iter(self._connection.between(self._start_index(start), int(end["index"])))

    def commit(self, end: dict) -> None:
        if self._connection is not None and end.get("session") == self.session:
            self._connection.drop_before(int(end["index"]))


class WebSocketDataSource(DataSource):
    """``format("websocket")`` once registered (:func:`register`)."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return SCHEMA

    def simpleStreamReader(self, schema) -> WebSocketStreamReader:
        return WebSocketStreamReader(self.options)


def register(spark) -> None:
    spark.dataSource.register(WebSocketDataSource)
