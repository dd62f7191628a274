"""Reading the streaming jobs' progress files from the lake: local folders and S3 (moto)."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from include.streaming import health

PROGRESS = [
    {"name": "job_a_query", "written_at_ms": 1000, "sources": []},
    {"name": "job_b_query", "written_at_ms": 2000, "sources": []},
]


def test_progress_from_a_local_folder_by_path_or_file_uri(tmp_path):
    folder = tmp_path / "status dir"
    folder.mkdir()
    for p in PROGRESS:
        (folder / f"{p['name']}.json").write_text(json.dumps(p))
    (folder / "STOP").write_text("")  # the stop marker is not progress
    assert health.read_progress(folder) == PROGRESS
    assert health.read_progress(folder.as_uri()) == PROGRESS  # file:///.../status%20dir


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_progress_from_s3(scheme, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        for p in PROGRESS:
            s3.put_object(Bucket="lake", Key=f"streaming/_status/job/{p['name']}.json", Body=json.dumps(p))
        s3.put_object(Bucket="lake", Key="streaming/_status/job/STOP", Body=b"")
        s3.put_object(Bucket="lake", Key="streaming/_status/job/old/other.json", Body=b"{}")  # not this job's folder
        got = health.read_progress(f"{scheme}://lake/streaming/_status/job", aws_conn_id="aws_test")
    assert got == PROGRESS


def test_a_query_without_progress_is_unhealthy(tmp_path):
    (tmp_path / "job_a_query.json").write_text(json.dumps(PROGRESS[0]))
    with pytest.raises(health.StreamingUnhealthy, match="job_b_query: no progress published yet"):
        health.check(tmp_path, "127.0.0.1:1", ["job_a_query", "job_b_query"], 300, 10, now_ms=2000)


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_lag_is_the_broker_end_offsets_minus_what_the_query_consumed(kafka_broker, tmp_path):  # noqa: F811
    topic = kafka_broker.create_topic(partitions=2)
    kafka_broker.produce(topic, [(b"k", b"v%d" % i, i % 2) for i in range(5)])  # ends: 3 and 2
    assert health.end_offsets(kafka_broker.bootstrap, [(topic, 0), (topic, 1)]) == {(topic, 0): 3, (topic, 1): 2}
    progress = {"name": "q", "written_at_ms": 1000, "sources": [{"end_offset": json.dumps({topic: {"0": 1, "1": 2}})}]}
    (tmp_path / "q.json").write_text(json.dumps(progress))
    [ok] = health.check(tmp_path, kafka_broker.bootstrap, ["q"], max_staleness_s=60, max_lag_records=2, now_ms=2000)
    assert ok.lag_records == 2
    with pytest.raises(health.StreamingUnhealthy, match="q: lag 2 records"):
        health.check(tmp_path, kafka_broker.bootstrap, ["q"], max_staleness_s=60, max_lag_records=1, now_ms=2000)


def test_a_progress_file_caught_while_being_rewritten_is_read_again(tmp_path):
    import threading
    import time

    path = tmp_path / "job_a_query.json"
    path.write_text("")  # truncated by the job's overwrite, not written yet

    def finish_writing():
        time.sleep(0.25)
        path.write_text(json.dumps(PROGRESS[0]))

    writer = threading.Thread(target=finish_writing)
    writer.start()
    assert health.read_progress(tmp_path) == [PROGRESS[0]]
    writer.join()


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_a_live_query_that_has_read_everything_is_idle_not_stale(kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(partitions=1)
    kafka_broker.produce(topic, [(b"k", b"v%d" % i, 0) for i in range(3)])
    progress = {"name": "q", "written_at_ms": 1_000, "sources": [{"end_offset": json.dumps({topic: {"0": 3}})}]}
    (tmp_path / "q.json").write_text(json.dumps(progress))
    heartbeat = tmp_path / health.HEARTBEAT_FILE
    # No batch for 999 s with a 60 s limit: the job says it is alive and nothing waits.
    heartbeat.write_text(json.dumps({"alive_at_ms": 990_000}))
    [idle] = health.check(tmp_path, kafka_broker.bootstrap, ["q"], max_staleness_s=60, max_lag_records=0,
                          now_ms=1_000_000)
    assert (idle.lag_records, idle.seconds_since_batch) == (0, 999)
    # The same without a recent heartbeat: the job is gone.
    heartbeat.write_text(json.dumps({"alive_at_ms": 900_000}))
    with pytest.raises(health.StreamingUnhealthy, match="q: stale, no batch for 999s"):
        health.check(tmp_path, kafka_broker.bootstrap, ["q"], max_staleness_s=60, max_lag_records=0, now_ms=1_000_000)
    # Alive, but records wait: stuck.
    heartbeat.write_text(json.dumps({"alive_at_ms": 990_000}))
    kafka_broker.produce(topic, [(b"k", b"late", 0)])
    with pytest.raises(health.StreamingUnhealthy, match="q: stale, no batch for 999s"):
        health.check(tmp_path, kafka_broker.bootstrap, ["q"], max_staleness_s=60, max_lag_records=5, now_ms=1_000_000)


def test_the_status_file_names_are_the_ones_the_jobs_write():
    from spark_apps.streaming import supervision

    assert (health.HEARTBEAT_FILE, health.STARTED_FILE) == (supervision.HEARTBEAT_FILE, supervision.STARTED_MARKER)
