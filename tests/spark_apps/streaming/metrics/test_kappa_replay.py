"""Kappa replay: job B keeps version 1 of the per-minute aggregates live; the aggregation changes
(version 2 adds p95); the replay DAG, run with ``dag.test()`` against the real broker, MariaDB and
spark-submit, rebuilds the whole history from the topic into ``metric_minute_aggregates_v2``,
finds it equal to the live table where both have data, and switches the view; the live table
stays. The comparison's rules (overlap, mismatch) and the switch also alone, on MariaDB."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from include.streaming import kappa

ROOT = Path(__file__).resolve().parents[4]
T0 = datetime(2026, 1, 1, 0, 0)
# (minute, host, metric, values): hand-made so the windows' counts, sums and p95 are known.
WINDOWS = [
    (0, "web-1", "disk_io_rate_mbps", [1.0, 2.0, 3.0, 4.0, 5.0]),      # p95 = 4 + 0.8 * (5 - 4) = 4.8
    (0, "web-2", "disk_io_rate_mbps", [10.0, 30.0]),                   # p95 = 10 + 0.95 * 20 = 29.0
    (1, "web-1", "memory_usage_gb", [50.0]),                       # p95 = 50
    (2, "web-1", "disk_io_rate_mbps", [0.0, 100.0, 100.0, 100.0]),     # p95 = 100
    (3, "web-2", "response_time_ms", [7.0, 8.0, 9.0]),         # p95 = 8 + 0.9 * 1 = 8.9
]
P95 = {(0, "web-1", "disk_io_rate_mbps"): 4.8, (0, "web-2", "disk_io_rate_mbps"): 29.0, (1, "web-1", "memory_usage_gb"): 50.0,
       (2, "web-1", "disk_io_rate_mbps"): 100.0, (3, "web-2", "response_time_ms"): 8.9}


def _metrics():
    from spark_apps.streaming.metrics import metric_pb2

    records, offset = [], 0
    for minute, host, name, values in WINDOWS:
        for i, value in enumerate(values):
            metric = metric_pb2.Metric(host=host, metric_name=name, region="eu-west-1", value=value,
                                       event_time_ms=_epoch_ms(T0 + timedelta(minutes=minute, seconds=i)),
                                       source_topic="metric-message", source_partition=0, source_offset=offset)
            records.append(metric.SerializeToString())
            offset += 1
    return records


def _epoch_ms(naive_utc: datetime) -> int:
    return int((naive_utc - datetime(1970, 1, 1)).total_seconds() * 1000)


def _load_dag(path: Path):
    spec = importlib.util.spec_from_file_location(f"dag_{path.stem}_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_replay_dag_rebuilds_the_history_with_a_new_aggregation_and_switches_the_view(
        spark, kafka_broker, fresh_results_db, airflow_db, tmp_path, monkeypatch):
    from include.platform import jvm
    from include.platform.spark_jobs import build_bundle
    from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b

    # The replayable topic, as platform_bootstrap declares it; its records: every window's values,
    # one republished copy (job A after a replay: same source coordinates) and one bad record.
    topic = "metric-protobuf"
    if topic not in kafka_broker.admin().list_topics(timeout=10).topics:
        kafka_broker.create_topic(topic, partitions=3)
    records = _metrics()
    kafka_broker.produce(topic, [(b"k", value, i % 3) for i, value in enumerate(records)]
                         + [(b"k", records[0], 1), (b"k", b"\x0a\xff", 2)])
    dead = kafka_broker.create_topic(partitions=1)

    # Version 1, live: job B over the topic (availableNow).
    query = job_b.start_query(spark, kafka_broker.bootstrap, (tmp_path / "lake").as_uri(),
                              (tmp_path / "ckpt_b").as_uri(), fresh_results_db, topic, dead, available_now=True)
    query.awaitTermination(600)
    assert query.exception() is None
    live = {r[:3]: r[3:] for r in fresh_results_db.query("SELECT window_start, host, metric_name, `count`, `sum`, "
                                                           "`min`, `max`, `avg` FROM metric_minute_aggregates")}
    assert len(live) == len(WINDOWS)

    # The replay DAG, as Airflow runs it: spark-submit of the bundle with the platform's jars.
    build = tmp_path / "build"
    build_bundle(build)
    conf_dir = tmp_path / "spark-conf"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text(f"spark.jars {jvm.spark_jars()}\nspark.sql.session.timeZone UTC\n")
    db = fresh_results_db
    for name, value in {
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka",
                                                  "extra": {"bootstrap.servers": kafka_broker.bootstrap}}),
        "AIRFLOW_CONN_MYSQL_RESULTS": f"mysql://{db.user}:{db.password}@{db.host}:{db.port}/{db.database}",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]",
                                                  "extra": {"spark-binary": "spark-submit"}}),
        "DP_SPARK_APPS_LOCAL_DIR": str(build),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_DRIVER_MEMORY": "1g",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }.items():
        monkeypatch.setenv(name, value)
    dag = _load_dag(ROOT / "dags" / "streaming" / "metrics_kappa_replay.py")
    run = dag.test(run_conf={"version": 2, "settle_minutes": 0})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states

    # The new table holds the whole history: every window, the same totals, and p95.
    replayed = {r[:3]: r[3:] for r in db.query("SELECT window_start, host, metric_name, `count`, `sum`, `min`, "
                                                 "`max`, `avg`, p95 FROM metric_minute_aggregates_v2")}
    assert set(replayed) == set(live)
    for key, values in live.items():
        assert replayed[key][:4] == values[:4] and replayed[key][4] == pytest.approx(values[4])
    for (minute, host, name), p95 in P95.items():
        assert replayed[(T0 + timedelta(minutes=minute), host, name)][5] == pytest.approx(p95)
    counts = {(T0 + timedelta(minutes=m), h, n): len(v) for m, h, n, v in WINDOWS}
    assert {k: v[0] for k, v in replayed.items()} == counts  # the republished copy once, the bad record not
    # The view shows version 2 (with p95); version 1 is still there.
    assert db.query("SELECT COUNT(*), SUM(`count`), MAX(p95) FROM metric_minute_aggregates_current")[0][:2] == (
        len(WINDOWS), sum(counts.values()))
    assert db.query("SELECT COUNT(*) FROM metric_minute_aggregates")[0][0] == len(WINDOWS)
    report = db.query("SELECT version, source_topic, events, windows, first_window, last_window, end_offsets "
                        "FROM kappa_replays WHERE target_table = 'metric_minute_aggregates_v2'")[0]
    assert report[:6] == (2, topic, sum(counts.values()), len(WINDOWS), T0, T0 + timedelta(minutes=3))
    assert sum(json.loads(report[6]).values()) >= len(records) + 2
    conn = db.connect()
    try:
        assert kappa.live_table(conn) == "metric_minute_aggregates_v2"
    finally:
        conn.close()


def _table(conn, name: str, rows: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{name}` (window_start DATETIME NOT NULL, host VARCHAR(255) NOT NULL, "
                    "metric_name VARCHAR(255) NOT NULL, `count` BIGINT, `sum` DOUBLE, "
                    "PRIMARY KEY (window_start, host, metric_name))")
        cur.executemany(f"INSERT INTO `{name}` VALUES (%s, %s, %s, %s, %s)", rows)
    conn.commit()


def test_compare_covers_the_overlap_only_and_fails_on_a_difference(fresh_results_db):
    def minute(m):
        return T0 + timedelta(minutes=m)

    conn = fresh_results_db.connect()
    try:
        assert kappa.live_table(conn) == "metric_minute_aggregates"
        # live from minute 0 to 5; the log (retention) from minute 2 to 6.
        _table(conn, "metric_minute_aggregates", [(minute(m), "h", "disk_io_rate_mbps", 10 + m, 1.5 * m) for m in range(6)])
        _table(conn, "metric_minute_aggregates_v2",
               [(minute(2), "h", "disk_io_rate_mbps", 1, 3.0)]  # cut by retention: not compared
               + [(minute(m), "h", "disk_io_rate_mbps", 10 + m, 1.5 * m) for m in range(3, 6)]
               + [(minute(6), "h", "disk_io_rate_mbps", 99, 0.0)])  # newer than live: not compared
        result = kappa.compare(conn, "metric_minute_aggregates_v2", "metric_minute_aggregates", settle_minutes=1)
        assert (result.first, result.last, result.windows, result.events) == (minute(3), minute(4), 2, 13 + 14)
        with conn.cursor() as cur:
            cur.execute("UPDATE metric_minute_aggregates_v2 SET `sum` = `sum` + 0.001 WHERE window_start = %s",
                        (minute(4),))
            cur.execute("DELETE FROM metric_minute_aggregates WHERE window_start = %s", (minute(3),))
        conn.commit()
        with pytest.raises(kappa.ReplayMismatch, match=r"2 windows differ .*only in metric_minute_aggregates_v2.*"
                                                         r"count/sum 14/6.0 in metric_minute_aggregates, 14/6.001"):
            kappa.compare(conn, "metric_minute_aggregates_v2", "metric_minute_aggregates", settle_minutes=1)

        assert kappa.switch_view(conn, "metric_minute_aggregates_v2") == "metric_minute_aggregates"
        assert kappa.live_table(conn) == "metric_minute_aggregates_v2"
        assert kappa.switch_view(conn, "metric_minute_aggregates") == "metric_minute_aggregates_v2"
        with pytest.raises(RuntimeError, match="does not exist"):
            kappa.switch_view(conn, "metric_minute_aggregates_v7")
        with pytest.raises(ValueError):
            kappa.switch_view(conn, "users; DROP TABLE x")
    finally:
        conn.close()
