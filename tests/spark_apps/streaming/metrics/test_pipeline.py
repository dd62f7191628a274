"""The whole metrics pipeline against the real broker and MySQL: producer -> job A -> job B -> batch totals.

Expected numbers come from the producer's own events (which ones it broke and how),
never from the pipeline's code.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from include.producers import metrics as producer
from spark_apps.streaming.metrics import aggregate_csv, json_to_protobuf
from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(900)]

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

    def produce(self, seed: int, offsets_s: list[int], hosts: int = 3, invalid_share: float = 0.15):
        rng = random.Random(seed)
        events = []
        for offset_s in offsets_s:
            events += producer.generate_events(hosts * 5, rng, hosts=hosts, timestamp_ms=T0 + offset_s * 1000,
                                               invalid_share=invalid_share)
        report = producer.produce_events(producer.make_producer(self.broker.bootstrap), self.source, events)
        assert report.delivered == len(events)
        self.events += events

    def run_job_a(self, checkpoint_name: str = "json_to_protobuf"):
        query = json_to_protobuf.start_query(
            self.spark, self.broker.bootstrap, f"{self.checkpoints}/{checkpoint_name}",
            self.source, self.protobuf, self.dead_letters, available_now=True,
        )
        try:
            assert query.awaitTermination(QUERY_TIMEOUT_S), "job A did not finish"
        finally:
            if query.isActive:
                query.stop()
        assert query.exception() is None

    def run_job_b(self):
        query = job_b.start_query(
            self.spark, self.broker.bootstrap, self.lake, f"{self.checkpoints}/protobuf_to_lake", self.db,
            self.protobuf, self.dead_letters, available_now=True,
        )
        try:
            assert query.awaitTermination(QUERY_TIMEOUT_S), "job B did not finish"
        finally:
            if query.isActive:
                query.stop()
        assert query.exception() is None

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

    def minute_aggregates_in_mysql(self) -> dict:
        rows = self.query_db(f"SELECT window_start, host, metric_name, `count`, `sum` FROM {job_b.AGGREGATES_TABLE}")
        return {(w, h, m): (c, round(s, 6)) for w, h, m, c, s in rows}

    def query_db(self, sql: str) -> list[tuple]:
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def csv_source_coordinates(self) -> list[tuple]:
        rows = aggregate_csv.read_metric_csv(self.spark, self.lake).collect()
        return [(r.source_topic, r.source_partition, r.source_offset) for r in rows]

    def dead_letter_reasons(self) -> list[tuple]:
        records = self.broker.consume_all(self.dead_letters, partitions=1)
        bodies = [json.loads(r.value()) for r in records]
        return [(b["source_topic"], b["source_partition"], b["source_offset"], b["reason"]) for b in bodies]


def assert_results_exact(pipeline: Pipeline) -> None:
    source_records = pipeline.broker.consume_all(pipeline.source, partitions=2)
    kind_of_value = {e.value: e.invalid_kind for e in pipeline.events}
    valid_coordinates = sorted((pipeline.source, r.partition(), r.offset()) for r in source_records
                               if kind_of_value[r.value()] is None)
    invalid_records = {(r.partition(), r.offset()): kind_of_value[r.value()] for r in source_records
                       if kind_of_value[r.value()] is not None}
    assert len(source_records) == len(pipeline.events)

    # MySQL: every valid event counted exactly once, in the right window with the right sum.
    in_mysql = pipeline.minute_aggregates_in_mysql()
    assert in_mysql == pipeline.expected_minute_aggregates()
    assert sum(count for count, _ in in_mysql.values()) == len(valid_coordinates)

    # Lake CSV: one row per valid source record.
    assert sorted(pipeline.csv_source_coordinates()) == valid_coordinates

    # Dead letters: exactly the broken source records, each with its offset and a matching reason.
    from_job_a = [d for d in pipeline.dead_letter_reasons() if d[0] == pipeline.source]
    assert sorted((p, o) for _, p, o, _ in from_job_a) == sorted(invalid_records)
    for _, partition, offset, reason in from_job_a:
        assert reason.startswith(REASON_PREFIX[invalid_records[(partition, offset)]]), (reason, partition, offset)


def test_pipeline_counts_every_valid_event_once_and_routes_bad_ones(kafka_spark, kafka_broker, fresh_results_db, tmp_path):
    pipeline = Pipeline(kafka_spark, kafka_broker, fresh_results_db, tmp_path)
    pipeline.produce(seed=11, offsets_s=[5, 35, 65])  # three bursts over two minutes
    assert any(e.invalid_kind for e in pipeline.events)
    # A record on the Protobuf topic that is not a Metric: job B must dead-letter it.
    kafka_broker.produce(pipeline.protobuf, [(b"junk", b"\x0a\xffnot protobuf", 0)])

    pipeline.run_job_a()
    pipeline.run_job_b()
    assert_results_exact(pipeline)
    protobuf_dead = [d for d in pipeline.dead_letter_reasons() if d[0] == pipeline.protobuf]
    assert [(p, o) for _, p, o, _ in protobuf_dead] == [(0, 0)]
    assert protobuf_dead[0][3].startswith("undecodable_protobuf:")

    assert aggregate_csv.run(kafka_spark, pipeline.lake, fresh_results_db) == 3
    totals = {name: (round(total, 6), count, round(avg, 6)) for name, total, count, avg in pipeline.query_db(
        f"SELECT server_name, total_sum, `count`, average FROM {aggregate_csv.TOTALS_TABLE}")}
    assert totals == pipeline.expected_server_totals()

    # Rerunning both jobs from their checkpoints finds nothing new and changes nothing.
    protobuf_records_before = len(kafka_broker.consume_all(pipeline.protobuf, partitions=2))
    dead_letters_before = pipeline.dead_letter_reasons()
    pipeline.run_job_a()
    pipeline.run_job_b()
    assert len(kafka_broker.consume_all(pipeline.protobuf, partitions=2)) == protobuf_records_before
    assert sorted(pipeline.dead_letter_reasons()) == sorted(dead_letters_before)
    assert_results_exact(pipeline)

    # Restart with new data, plus a simulated replay of job A (a fresh checkpoint
    # republishes every record, as a batch replayed after a crash would): job B's
    # deduplication keeps every count exact.
    pipeline.produce(seed=12, offsets_s=[95])
    pipeline.run_job_a()
    pipeline.run_job_a(checkpoint_name="json_to_protobuf_replayed")
    valid_count = len(pipeline.valid_events())
    assert len(kafka_broker.consume_all(pipeline.protobuf, partitions=2)) == 2 * valid_count + 1
    pipeline.run_job_b()
    in_mysql = pipeline.minute_aggregates_in_mysql()
    assert in_mysql == pipeline.expected_minute_aggregates()
    assert sum(count for count, _ in in_mysql.values()) == valid_count
    assert len(pipeline.csv_source_coordinates()) == valid_count


class CuttableTcpProxy:
    """A real TCP hop in front of MariaDB that the test can cut (connections refused and
    open ones dropped) and restore: MySQL unreachable for a while, then back."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self._socket, self._threading = socket, threading
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server = None
        self._conns: list = []

    def open(self):
        server = self._socket.socket()
        server.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

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
        self._server.close()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        self._conns = []


def test_mysql_outage_loses_and_doubles_nothing(kafka_spark, kafka_broker, fresh_results_db, tmp_path):
    from dataclasses import replace

    proxy = CuttableTcpProxy(fresh_results_db.port)
    proxy.open()
    db_via_proxy = replace(fresh_results_db, host="127.0.0.1", port=proxy.port)
    pipeline = Pipeline(kafka_spark, kafka_broker, db_via_proxy, tmp_path)
    pipeline.produce(seed=21, offsets_s=[5, 35], invalid_share=0.0)
    pipeline.run_job_a()

    # MySQL goes away: job B's query fails (the supervisor would resubmit it);
    # its checkpoint does not advance past the batch that could not be written.
    proxy.cut()
    with pytest.raises(Exception, match="Can't connect to MySQL"):
        pipeline.run_job_b()

    # MySQL is back: the resubmitted job resumes from its checkpoints and every event is
    # counted exactly once, in MySQL and in the lake files.
    proxy.open()
    pipeline.run_job_b()
    assert_results_exact(pipeline)
    proxy.cut()
