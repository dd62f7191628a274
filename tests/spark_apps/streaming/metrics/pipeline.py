"""The metrics pipeline against the real broker and MySQL, for the pipeline and fault tests.

:class:`Pipeline` owns a test's topics, lake and checkpoints, produces events and remembers
them (the producer's record of what it sent is the truth every check compares with), runs
job A and job B as queries of the test's Spark session, and reads what they produced.
:func:`assert_results_exact` is the exactly-once check: every valid event once in MySQL
and once in the lake files, every broken one a dead letter.
"""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone

from include.producers import metrics as producer
from spark_apps.streaming.metrics import aggregate_csv, json_to_protobuf
from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b
from tests.spark_apps.streaming.waiting import wait_for  # noqa: F401 (re-exported to the tests)

QUERY_TIMEOUT_S = 240
T0 = 1718876820000  # a whole minute (2024-06-20 09:47 UTC)
REASON_PREFIX = {
    "invalid_json": "invalid_json",
    "missing_field": "missing_field:",
    "wrong_type": "wrong_type:",
    "unknown_metric_name": "unknown_metric_name:",
}




class Pipeline:
    def __init__(self, spark, broker, db, tmp_path):
        self.spark, self.broker, self.db = spark, broker, db
        self.source = broker.create_topic(partitions=2)
        self.protobuf = broker.create_topic(partitions=2)
        self.dead_letters = broker.create_topic(partitions=1)
        self.lake = f"file://{tmp_path}/lake"
        self.checkpoints = f"file://{tmp_path}/checkpoints"
        self.events: list[producer.Event] = []

    # --- input: the producer's truth ---------------------------------------------------

    def make_events(self, seed: int, offsets_s: list[int], hosts: int = 3, invalid_share: float = 0.15):
        """One burst (every host x metric) per offset (seconds after T0); not produced yet."""
        rng = random.Random(seed)
        events = []
        for offset_s in offsets_s:
            events += producer.generate_events(hosts * 5, rng, hosts=hosts, timestamp_ms=T0 + offset_s * 1000,
                                               invalid_share=invalid_share)
        return events

    def produce(self, seed: int, offsets_s: list[int], hosts: int = 3, invalid_share: float = 0.15):
        events = self.make_events(seed, offsets_s, hosts, invalid_share)
        report = producer.produce_events(producer.make_producer(self.broker.bootstrap), self.source, events)
        assert report.delivered == len(events)
        self.events += events

    # --- the jobs, in this test's Spark session --------------------------------------------

    def start_job_a(self, checkpoint_name: str = "json_to_protobuf", **trigger):
        """Job A's query: availableNow unless ``trigger_seconds`` is given."""
        return json_to_protobuf.start_query(
            self.spark, self.broker.bootstrap, f"{self.checkpoints}/{checkpoint_name}",
            self.source, self.protobuf, self.dead_letters, **(trigger or {"available_now": True}),
        )

    def start_job_b(self, db=None, **trigger):
        return job_b.start_query(
            self.spark, self.broker.bootstrap, self.lake, f"{self.checkpoints}/protobuf_to_lake", db or self.db,
            self.protobuf, self.dead_letters, **(trigger or {"available_now": True}),
        )

    @staticmethod
    def stop(*queries) -> None:
        """Stop running queries between micro-batches, as the STOP marker does (a stop in the
        middle of a batch interrupts it; it would be replayed, but makes Spark log noise)."""
        for query in queries:
            deadline = time.monotonic() + 60
            while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
                time.sleep(0.1)
            if query.isActive:
                query.stop()

    @staticmethod
    def finish(query, what: str) -> None:
        try:
            assert query.awaitTermination(QUERY_TIMEOUT_S), f"{what} did not finish"
        finally:
            if query.isActive:
                query.stop()
        assert query.exception() is None

    def run_job_a(self, checkpoint_name: str = "json_to_protobuf"):
        self.finish(self.start_job_a(checkpoint_name), "job A")

    def run_job_b(self, db=None):
        self.finish(self.start_job_b(db), "job B")

    # --- what the pipeline should have produced, from the producer's truth ---------------

    def valid_events(self) -> list[dict]:
        return [json.loads(e.value) for e in self.events if e.invalid_kind is None]

    def expected_minute_aggregates(self) -> dict:
        totals = defaultdict(lambda: [0, 0.0])
        for e in self.valid_events():
            minute = datetime.fromtimestamp(int(e["timestamp"]) // 60000 * 60, timezone.utc).replace(tzinfo=None)
            key = (minute, e["host"], e["metricName"])
            totals[key][0] += 1
            totals[key][1] += e["value"]
        return {k: (count, round(total, 6)) for k, (count, total) in totals.items()}

    def expected_server_totals(self) -> dict:
        per_host = defaultdict(list)
        for e in self.valid_events():
            per_host[e["host"]].append(e["value"])
        return {h: (round(sum(v), 6), len(v), round(sum(v) / len(v), 6)) for h, v in per_host.items()}

    # --- what the pipeline did produce ----------------------------------------------------

    def query_db(self, sql: str) -> list[tuple]:
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def minute_aggregates_in_mysql(self) -> dict:
        rows = self.query_db(f"SELECT window_start, host, metric_name, `count`, `sum` FROM {job_b.AGGREGATES_TABLE}")
        return {(w, h, m): (c, round(s, 6)) for w, h, m, c, s in rows}

    def counted_in_mysql(self) -> int:
        """Events counted in MySQL so far (0 before job B created its table)."""
        try:
            return int(self.query_db(f"SELECT COALESCE(SUM(`count`), 0) FROM {job_b.AGGREGATES_TABLE}")[0][0])
        except Exception as error:  # table not there yet
            if "doesn't exist" in str(error):
                return 0
            raise

    def csv_source_coordinates(self) -> list[tuple]:
        rows = aggregate_csv.read_metric_csv(self.spark, self.lake).collect()
        return [(r.source_topic, r.source_partition, r.source_offset) for r in rows]

    def dead_letter_reasons(self) -> list[tuple]:
        records = self.broker.consume_all(self.dead_letters, partitions=1)
        bodies = [json.loads(r.value()) for r in records]
        return [(b["source_topic"], b["source_partition"], b["source_offset"], b["reason"]) for b in bodies]


def assert_results_exact(pipeline: Pipeline, dead_letters_once: bool = True) -> None:
    """Every event the producer sent is in the source topic once; every valid one is counted
    once in MySQL (right window, right sum) and is one row of the lake files; every broken one
    is a dead letter with its offset and a matching reason. Dead letters are at-least-once
    (a replayed batch publishes them again): ``dead_letters_once=False`` allows duplicates
    after a fault, never a missing or extra one."""
    source_records = pipeline.broker.consume_all(pipeline.source, partitions=2)
    # (Two broken events may have the same bytes, e.g. JSON truncated alike: then of the same kind.)
    kind_of_value = {e.value: e.invalid_kind for e in pipeline.events}
    assert sorted(r.value() for r in source_records) == sorted(e.value for e in pipeline.events)
    valid_coordinates = sorted((pipeline.source, r.partition(), r.offset()) for r in source_records
                               if kind_of_value[r.value()] is None)
    invalid_records = {(r.partition(), r.offset()): kind_of_value[r.value()] for r in source_records
                       if kind_of_value[r.value()] is not None}

    # MySQL: every valid event counted exactly once, in the right window with the right sum.
    in_mysql = pipeline.minute_aggregates_in_mysql()
    assert in_mysql == pipeline.expected_minute_aggregates()
    assert sum(count for count, _ in in_mysql.values()) == len(valid_coordinates)

    # Lake CSV: one row per valid source record.
    assert sorted(pipeline.csv_source_coordinates()) == valid_coordinates

    # Dead letters: exactly the broken source records, each with its offset and a matching reason.
    from_job_a = [d for d in pipeline.dead_letter_reasons() if d[0] == pipeline.source]
    found = sorted((p, o) for _, p, o, _ in from_job_a)
    assert (found if dead_letters_once else sorted(set(found))) == sorted(invalid_records)
    for _, partition, offset, reason in from_job_a:
        assert reason.startswith(REASON_PREFIX[invalid_records[(partition, offset)]]), (reason, partition, offset)


class CuttableTcpProxy:
    """A real TCP hop in front of MariaDB that the test can cut (connections refused and
    open ones dropped) and restore: MySQL unreachable for a while, then back."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server = None
        self._conns: list = []

    def open(self):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        # shutdown() first: it wakes the threads blocked in accept()/recv() (close() alone may not).
        for sock in (self._server, *self._conns):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._conns = []
