"""The weather pipeline against a real Cassandra node, the real broker and MariaDB.

:class:`CassandraNode` is the embedded stack's Cassandra (include/platform/stack/cassandra.py) on
free ports under a private home, stoppable and restartable (same data). :class:`WeatherPipeline`
owns one test's topics, keyspace and checkpoints, produces responses and remembers them (the
producer's record of what it sent is the truth every check compares with), runs the job's
queries in the test's Spark session and reads what they wrote.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from include.cassandra.schema import ensure_schema
from include.platform import stack
from include.platform.stack import cassandra as cassandra_service
from spark_apps.common.cassandra import CassandraConfig, connect
from spark_apps.streaming.weather import job, tables
from tests.spark_apps.streaming.waiting import wait_for  # noqa: F401 (re-exported to the tests)

QUERY_TIMEOUT_S = 300
REPLICATION = {"class": "SimpleStrategy", "replication_factor": 1}




@dataclass
class CassandraNode:
    cfg: stack.StackConfig

    @property
    def config(self) -> CassandraConfig:
        return CassandraConfig(contact_points=("127.0.0.1",), port=self.cfg.cassandra_port)

    def start(self) -> None:
        stack.start_service(self.cfg, cassandra_service.service(self.cfg), dict(os.environ))

    def stop(self) -> None:
        assert stack.stop_service(self.cfg, "cassandra")

    def query(self, cql: str, params=None) -> list:
        cluster, session = connect(self.config)
        try:
            return list(session.execute(cql, params))
        finally:
            cluster.shutdown()

    def create_keyspace(self) -> str:
        keyspace = f"weather_{uuid.uuid4().hex[:10]}"
        cluster, session = connect(self.config, request_timeout=60)
        try:
            assert ensure_schema(session, REPLICATION, {keyspace: tables.table_statements(keyspace)}) == [
                f"created keyspace {keyspace}", f"created table {keyspace}.observations",
                f"created table {keyspace}.hourly"]
        finally:
            cluster.shutdown()
        return keyspace


def start_node(home) -> CassandraNode:
    cfg = stack.StackConfig(home=home, kafka_port=stack.free_port(), kafka_controller_port=stack.free_port(),
                            moto_port=stack.free_port(), cassandra_port=stack.free_port(),
                            cassandra_storage_port=stack.free_port())
    node = CassandraNode(cfg)
    node.start()
    return node


def hour_of(dt: int) -> int:
    return dt // 3600 * 3600


def expected_hourly(bodies: list[dict]) -> dict:
    """(city, hour start in s) -> the hour's aggregates, from the responses (one per city and dt)."""
    unique = {(b["id"], b["dt"]): b for b in bodies}
    hours = defaultdict(list)
    for (city, dt), body in unique.items():
        hours[(city, hour_of(dt))].append(body)
    result = {}
    for key, group in hours.items():
        temps = [b["main"]["temp"] for b in group]
        humidity = [b["main"]["humidity"] for b in group]
        wind = [b["wind"]["speed"] for b in group]
        gusts = [b["wind"]["gust"] for b in group if "gust" in b["wind"]]
        rain = [b.get("rain", {}).get("1h", 0.0) for b in group]
        snow = [b.get("snow", {}).get("1h", 0.0) for b in group]
        result[key] = (len(group), min(temps), max(temps), round(sum(temps) / len(temps), 6), min(humidity),
                       max(humidity), round(sum(humidity) / len(humidity), 6), round(sum(wind) / len(wind), 6),
                       max(wind), max(gusts) if gusts else None, round(sum(rain), 6), max(rain), round(sum(snow), 6))
    return result


def _hourly_tuple(r) -> tuple:
    return (r.observations, r.temp_min, r.temp_max, round(r.temp_mean, 6), r.humidity_min, r.humidity_max,
            round(r.humidity_mean, 6), round(r.wind_speed_mean, 6), r.wind_speed_max, r.wind_gust_max,
            round(r.rain_1h_sum, 6), r.rain_1h_max, round(r.snow_1h_sum, 6))


class WeatherPipeline:
    def __init__(self, spark, broker, node: CassandraNode, db, tmp_path):
        self.spark, self.broker, self.node, self.db = spark, broker, node, db
        self.source = broker.create_topic(partitions=2)
        self.dead_letters = broker.create_topic(partitions=1)
        self.keyspace = node.create_keyspace()
        self.checkpoint = f"file://{tmp_path}/checkpoints/weather"
        self.sent: list[dict] = []  # every valid response produced (duplicates included)

    # --- input ---------------------------------------------------------------------------

    def produce(self, bodies: list[dict], raw: list[bytes] = ()) -> None:
        """Valid responses (keyed by city, as the producer keys them) and raw bad records."""
        records = [(str(b["id"]).encode(), json.dumps(b, separators=(",", ":")).encode(), b["id"] % 2)
                   for b in bodies]
        records += [(b"bad", value, 0) for value in raw]
        self.broker.produce(self.source, records)
        self.sent += bodies

    # --- the job, in this test's Spark session ---------------------------------------------

    def start(self, **trigger):
        """Both queries of the job: availableNow unless ``trigger_seconds`` is given."""
        return job.start_queries(self.spark, self.broker.bootstrap, self.checkpoint, self.node.config, self.db,
                                 self.keyspace, self.source, self.dead_letters,
                                 **(trigger or {"available_now": True}))

    @staticmethod
    def stop(queries) -> None:
        for query in queries:
            deadline = time.monotonic() + 60
            while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
                time.sleep(0.1)
            if query.isActive:
                query.stop()

    def run_available_now(self) -> None:
        queries = self.start()
        try:
            for query in queries:
                assert query.awaitTermination(QUERY_TIMEOUT_S), f"{query.name} did not finish"
        finally:
            self.stop(queries)
        for query in queries:
            assert query.exception() is None, query.exception()

    # --- what should be there -------------------------------------------------------------

    def expected_observations(self) -> dict:
        """(city, dt) -> temperature of every distinct observation sent."""
        return {(b["id"], b["dt"]): b["main"]["temp"] for b in self.sent}

    def expected_hourly(self) -> dict:
        return expected_hourly(self.sent)

    # --- what is there ----------------------------------------------------------------------

    def observations_in_cassandra(self) -> list:
        return self.node.query(f"SELECT * FROM {self.keyspace}.{tables.OBSERVATIONS_TABLE}")

    def observation_count(self) -> int:
        try:
            return len(self.observations_in_cassandra())
        except Exception:  # node down
            return -1

    def hourly_in_cassandra(self) -> dict:
        rows = self.node.query(f"SELECT * FROM {self.keyspace}.{tables.HOURLY_TABLE}")
        result = {}
        for r in rows:
            hour = int(r.hour.replace(tzinfo=timezone.utc).timestamp())
            assert r.month == datetime.fromtimestamp(hour, timezone.utc).strftime("%Y-%m")
            result[(r.city_id, hour)] = _hourly_tuple(r)
        return result

    def hourly_in_mysql(self) -> dict:
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(f"SELECT * FROM `{tables.MYSQL_HOURLY_TABLE}`")
                except Exception as error:
                    if "doesn't exist" in str(error):
                        return {}
                    raise
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

        class Row:
            def __init__(self, values):
                self.__dict__.update(values)

        return {(r["city_id"], int(r["hour_start"].replace(tzinfo=timezone.utc).timestamp())): _hourly_tuple(Row(r))
                for r in rows}

    def dead_letter_bodies(self) -> list[dict]:
        return [json.loads(r.value()) for r in self.broker.consume_all(self.dead_letters, partitions=1)]


def assert_observations_exact(pipeline: WeatherPipeline) -> None:
    """Every distinct observation sent is one row of ``observations`` (right partition, right
    values); no other row; and each row names a source record that carried it."""
    rows = pipeline.observations_in_cassandra()
    keys = [(r.city_id, int(r.observed_at.replace(tzinfo=timezone.utc).timestamp())) for r in rows]
    assert len(keys) == len(set(keys))
    got = {(r.city_id, int(r.observed_at.replace(tzinfo=timezone.utc).timestamp())): r.temp for r in rows}
    assert got == pipeline.expected_observations()
    carried = {}
    for record in pipeline.broker.consume_all(pipeline.source, partitions=2):
        try:
            body = json.loads(record.value())
            carried[(record.partition(), record.offset())] = (body["id"], body["dt"])
        except (ValueError, KeyError, TypeError):
            pass
    for r, key in zip(rows, keys):
        assert r.day.date() == r.observed_at.date()  # the partition is the UTC day
        assert r.source_topic == pipeline.source and carried[(r.source_partition, r.source_offset)] == key


def assert_hourly_exact(pipeline: WeatherPipeline) -> None:
    expected = pipeline.expected_hourly()
    assert pipeline.hourly_in_cassandra() == expected
    assert pipeline.hourly_in_mysql() == expected
