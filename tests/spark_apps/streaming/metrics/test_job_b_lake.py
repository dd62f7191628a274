"""Job B's helpers on tiny static frames (no broker; MySQL only for the aggregates)."""
from __future__ import annotations

import pytest

from spark_apps.streaming.metrics import aggregate_csv
from spark_apps.streaming.metrics import protobuf_to_lake_and_mysql as job_b
from tests.spark_apps.streaming.metrics.test_transforms import T0, decoded_rows

pytestmark = pytest.mark.spark


def test_batch_folder_names_round_trip():
    assert job_b.csv_batch_uri("file:///lake/streaming/metrics_csv", 12) == \
        "file:///lake/streaming/metrics_csv/batch_id=12"
    assert job_b.batch_id_of_folder("file:///lake/streaming/metrics_csv/batch_id=12") == 12
    assert job_b.batch_id_of_folder("s3a://b/x/batch_id=3/") == 3
    with pytest.raises(ValueError):
        job_b.batch_id_of_folder("file:///lake/streaming/metrics_csv/_spark_metadata")


def test_only_folders_with_a_commit_marker_count(spark, tmp_path):
    root = tmp_path / "metrics_csv"
    for batch_id, committed in ((10, True), (2, True), (3, False)):
        folder = root / f"batch_id={batch_id}"
        folder.mkdir(parents=True)
        if committed:
            (folder / "_SUCCESS").write_text("")
    folders = job_b.committed_csv_folders(spark, root.as_uri())
    assert [job_b.batch_id_of_folder(f) for f in folders] == [2, 10]  # by batch id, 3 left out
    assert job_b.committed_csv_folders(spark, (tmp_path / "nothing").as_uri()) == []


def test_batch_rows_are_deduplicated_on_source_coordinates(spark):
    decoded = decoded_rows(spark, [
        ("server1", "memory_usage_gb", T0, 7.0, 0),
        ("server1", "memory_usage_gb", T0, 7.0, 0),  # republished by job A
        ("server2", "memory_usage_gb", T0, 2.0, 1),
    ], dead_letters=[("empty_value", b"metric-protobuf:0:3")])
    rows = job_b.batch_rows(decoded, "2 minutes").collect()
    assert sorted((r.host, r.source_offset) for r in rows if r.reason is None) == [("server1", 0), ("server2", 1)]
    assert [bytes(r.dead_letter_key) for r in rows if r.reason] == [b"metric-protobuf:0:3"]
    assert list(rows[0].asDict()) == job_b.BATCH_COLUMNS


def batch(spark, rows, dead_letters=()):
    return job_b.batch_rows(decoded_rows(spark, rows, dead_letters), "2 minutes")


def test_a_committed_batch_is_written_once_and_read_back(spark, tmp_path):
    lake_uri = (tmp_path / "lake").as_uri()
    csv_root = job_b.csv_uri(lake_uri)
    published = []
    first = batch(spark, [("server1", "memory_usage_gb", T0, 7.0, 0), ("server1", "response_time_ms", T0, 30.0, 1)],
                  dead_letters=[("empty_value", b"metric-protobuf:0:9")])
    assert job_b.write_batch(first, 0, csv_root, None, "", lambda df: published.extend(df.collect())) == 2
    assert [(bytes(r.key), bytes(r.value)) for r in published] == [(b"metric-protobuf:0:9",
                                                                      b'{"reason": "empty_value"}')]
    # A replay of batch 0 (whatever it holds) does not write the committed folder again.
    replay = batch(spark, [("server9", "memory_usage_gb", T0, 1.0, 0)])
    job_b.write_batch(replay, 0, csv_root, None, "")
    second = batch(spark, [("server2", "memory_usage_gb", T0, 2.0, 2)])
    job_b.write_batch(second, 1, csv_root, None, "", lambda df: pytest.fail("no dead letters in this batch"))
    # A batch that crashed before its commit marker: files but no _SUCCESS, not read.
    partial = tmp_path / "lake" / "streaming" / "metrics_csv" / "batch_id=2" / "metric_name=memory_usage_gb"
    partial.mkdir(parents=True)
    (partial / "part-0.csv").write_text("host,region,event_time_ms,event_time,value,source_topic,"
                                        "source_partition,source_offset\nserver3,r,0,,1.0,t,0,9\n")

    rows = aggregate_csv.read_metric_csv(spark, lake_uri).collect()
    assert sorted((r.host, r.metric_name, r.value, r.source_offset) for r in rows) == [
        ("server1", "memory_usage_gb", 7.0, 0),
        ("server1", "response_time_ms", 30.0, 1),
        ("server2", "memory_usage_gb", 2.0, 2),
    ]
    assert rows[0].asDict().keys() == {*aggregate_csv.CSV_SCHEMA.fieldNames(), "metric_name"}


def test_reading_a_lake_without_committed_batches_gives_no_rows(spark, tmp_path):
    rows = aggregate_csv.read_metric_csv(spark, (tmp_path / "lake").as_uri())
    assert rows.count() == 0
    assert "metric_name" in rows.columns


def test_batch_summary_gives_per_minute_totals_and_counts(spark):
    from datetime import datetime

    rows = batch(spark, [("server1", "memory_usage_gb", T0, 7.0, 0),
                         ("server1", "memory_usage_gb", T0 + 59_000, 2.0, 1),
                         ("server1", "memory_usage_gb", T0 + 60_000, 4.0, 2),
                         ("server2", "cpu_usage", T0, 5.0, 3)],
                 dead_letters=[("empty_value", b"p:0:1"), ("empty_value", b"p:0:2")])
    totals, metrics, dead = job_b.batch_summary(rows)
    w = datetime(2024, 6, 20, 9, 47)  # T0's minute, UTC
    assert (metrics, dead) == (4, 2)
    assert sorted(totals) == sorted([
        (w, "server1", "memory_usage_gb", 2, 9.0, 2.0, 7.0, 4.5),
        (datetime(2024, 6, 20, 9, 48), "server1", "memory_usage_gb", 1, 4.0, 4.0, 4.0, 4.0),
        (w, "server2", "cpu_usage", 1, 5.0, 5.0, 5.0, 5.0),
    ])


def test_aggregates_are_added_once_per_batch(fresh_results_db):
    from datetime import datetime

    w = datetime(2024, 6, 20, 9, 47)
    first = [(w, "server1", "memory_usage_gb", 2, 9.0, 2.0, 7.0, 4.5),
             (w, "server2", "memory_usage_gb", 1, 3.0, 3.0, 3.0, 3.0)]
    assert job_b.add_aggregates(fresh_results_db, "stream-1", 0, first) == 2
    assert job_b.add_aggregates(fresh_results_db, "stream-1", 0, first) == 0  # a replayed batch
    # A later batch adds to server1's window.
    later = [(w, "server1", "memory_usage_gb", 1, 1.0, 1.0, 1.0, 1.0)]
    assert job_b.add_aggregates(fresh_results_db, "stream-1", 1, later) == 1
    assert job_b.add_aggregates(fresh_results_db, "stream-1", 2, []) == 0
    conn = fresh_results_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT window_start, host, `count`, `sum`, `min`, `max`, `avg` "
                        "FROM metric_minute_aggregates ORDER BY host")
            assert list(cur.fetchall()) == [(w, "server1", 3, 10.0, 1.0, 7.0, 10 / 3),
                                            (w, "server2", 1, 3.0, 3.0, 3.0, 3.0)]
    finally:
        conn.close()


def test_progress_file_carries_the_batch_phase_durations(spark, tmp_path):
    import json

    from spark_apps.streaming import supervision

    class FakeQuery:
        name, id, runId = "q", "id-1", "run-1"
        lastProgress = {"batchId": 4, "timestamp": "2024-06-20T09:47:00.000Z", "numInputRows": 3,
                        "inputRowsPerSecond": 1.5, "processedRowsPerSecond": 2.0,
                        "durationMs": {"addBatch": 900, "walCommit": 120, "triggerExecution": 1100},
                        "sources": [{"description": "s", "endOffset": {"t": {"0": 3}}, "latestOffset": None}]}
        recentProgress = [lastProgress]

    supervision.write_progress(spark, tmp_path.as_uri(), FakeQuery())
    record = json.loads((tmp_path / "q.json").read_text())
    assert record["batch_id"] == 4 and record["num_input_rows"] == 3
    assert record["duration_ms"] == {"addBatch": 900, "walCommit": 120, "triggerExecution": 1100}
    assert "last_output_batch_id" not in record  # the query does not count its output


def test_progress_file_names_the_last_batch_that_wrote_rows(spark, tmp_path):
    """A query observing its own output (energy_joined) commits batches that write nothing while
    its join waits for the watermark: the progress names the last batch that wrote rows, which the
    health DAG announces as new data (include/streaming/health.py new_batch), not the last batch."""
    import json

    from pyspark.sql import Row

    from include.streaming import health
    from spark_apps.streaming import supervision

    def batch(batch_id: int, rows: int) -> dict:
        return {"batchId": batch_id, "timestamp": "2026-12-03T09:00:00.000Z", "numInputRows": 5,
                "observedMetrics": {"joined": Row(rows=rows)}, "sources": []}

    class FakeQuery:
        name, id, runId = "joined", "id-1", "run-1"
        recentProgress = [batch(0, 0), batch(1, 0)]
        lastProgress = recentProgress[-1]

    output_batches: dict = {}
    query = FakeQuery()
    supervision.write_progress(spark, tmp_path.as_uri(), query, output_batches)
    assert json.loads((tmp_path / "joined.json").read_text())["last_output_batch_id"] is None
    assert health.new_batch(tmp_path.as_uri(), "joined", None) is None  # committed, but nothing written

    query.recentProgress = [batch(2, 7), batch(3, 0), batch(4, 0)]  # 2 wrote rows, then two empty batches
    query.lastProgress = query.recentProgress[-1]
    supervision.write_progress(spark, tmp_path.as_uri(), query, output_batches)
    record = json.loads((tmp_path / "joined.json").read_text())
    assert (record["batch_id"], record["last_output_batch_id"]) == (4, 2)
    assert health.new_batch(tmp_path.as_uri(), "joined", None) == 2
    assert health.new_batch(tmp_path.as_uri(), "joined", 2) is None  # announced already

    query.recentProgress = [batch(5, 0)]  # batch 2 has left Spark's recent progress: still known
    query.lastProgress = query.recentProgress[-1]
    supervision.write_progress(spark, tmp_path.as_uri(), query, output_batches)
    assert json.loads((tmp_path / "joined.json").read_text())["last_output_batch_id"] == 2
