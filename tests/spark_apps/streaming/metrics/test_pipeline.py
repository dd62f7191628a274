"""The whole metrics pipeline against the real broker and MySQL: producer -> job A -> job B -> batch totals.

Expected numbers come from the producer's own events (which ones it broke and how),
never from the pipeline's code. Also here: MySQL unreachable for a while under a running
job B (the other faults: test_broker_restart.py, test_supervision.py).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from pyspark.errors import StreamingQueryException

from spark_apps.streaming.metrics import aggregate_csv
from tests.spark_apps.streaming.metrics.pipeline import CuttableTcpProxy, Pipeline, assert_results_exact, wait_for

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(900)]


def test_pipeline_counts_every_valid_event_once_and_routes_bad_ones(spark, kafka_broker, fresh_results_db, tmp_path):
    pipeline = Pipeline(spark, kafka_broker, fresh_results_db, tmp_path)
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

    assert aggregate_csv.run(spark, pipeline.lake, fresh_results_db) == 3
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


def test_mysql_outage_under_a_running_job_loses_and_doubles_nothing(spark, kafka_broker, fresh_results_db, tmp_path):
    proxy = CuttableTcpProxy(fresh_results_db.port)
    proxy.open()
    db_via_proxy = replace(fresh_results_db, host="127.0.0.1", port=proxy.port)
    pipeline = Pipeline(spark, kafka_broker, fresh_results_db, tmp_path)
    job_a = pipeline.start_job_a(trigger_seconds=0.5)
    job_b = pipeline.start_job_b(db_via_proxy, trigger_seconds=0.5)
    try:
        pipeline.produce(seed=21, offsets_s=[5, 35], invalid_share=0.1)
        wait_for(lambda: pipeline.counted_in_mysql() == len(pipeline.valid_events()), 180, "the first events in MySQL")

        # MySQL goes away while events keep coming: job B's next batch cannot be written and
        # its query fails (the supervisor resubmits it); its checkpoint does not advance past it.
        proxy.cut()
        pipeline.produce(seed=22, offsets_s=[65, 95], invalid_share=0.1)
        with pytest.raises(StreamingQueryException, match="Can't connect to MySQL"):
            job_b.awaitTermination(180)
        pipeline.produce(seed=23, offsets_s=[125], invalid_share=0.1)  # more while it is down

        # MySQL is back: the resubmitted job resumes from its checkpoint.
        proxy.open()
        job_b = pipeline.start_job_b(db_via_proxy, trigger_seconds=0.5)
        wait_for(lambda: pipeline.counted_in_mysql() >= len(pipeline.valid_events()), 240, "job B to catch up",
                 tick=lambda: job_b.exception() and pytest.fail(f"job B failed: {job_b.exception()}"))
    finally:
        pipeline.stop(job_a, job_b)
        proxy.cut()
    assert job_a.exception() is None and job_b.exception() is None
    assert_results_exact(pipeline)
