"""Health of the long-running streaming jobs, read from outside Spark.

Each job publishes its queries' last progress to ``<status_uri>/<query>.json``
(spark_apps/streaming/supervision.py) in the lake: ``s3a://`` on the embedded moto (or a
local folder, ``DP_LAKE=file``) in the embedded stack, ``s3://`` on EMR, ``s3a://`` (MinIO)
in docker-compose. Here we read those files
(S3 through the Airflow connection ``aws_conn_id``) and ask the broker for
the end offset of every partition the query reads, and fail loudly when a query is
stale (no batch for too long, while records wait or after the job's heartbeat stopped: a live Kafka
query with nothing to read runs no batch and is idle) or lags too far behind (unread records).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

# The job's first start (spark_apps/streaming/supervision.py STARTED_MARKER; kept in step by
# tests/include/test_streaming_staleness.py: this module must not import Spark code).
STARTED_FILE = "STARTED"
HEARTBEAT_FILE = "HEARTBEAT"  # supervision.HEARTBEAT_FILE: rewritten every minute while the job runs


@dataclass(frozen=True)
class QueryHealth:
    name: str
    seconds_since_batch: float | None  # None: no batch yet, the job started seconds_since_start ago
    input_rows_per_second: float | None
    processed_rows_per_second: float | None
    lag_records: int
    seconds_since_start: float | None = None

    def line(self) -> str:
        if self.seconds_since_batch is None:
            return f"{self.name}: starting, no batch yet ({self.seconds_since_start:.0f}s since the job first started)"
        return (f"{self.name}: last batch {self.seconds_since_batch:.0f}s ago, "
                f"input {self.input_rows_per_second or 0:.1f} rows/s, "
                f"processed {self.processed_rows_per_second or 0:.1f} rows/s, lag {self.lag_records} records")


class StreamingUnhealthy(RuntimeError):
    pass


def _read_local_json(path: Path, attempts: int = 10) -> dict:
    """A progress file in a local folder. The job overwrites it in place (Hadoop's local file
    system truncates, then writes: there is no atomic replace), so a read can meet it empty or
    half written for a moment: read again. (An S3 object is replaced whole.)"""
    for attempt in range(attempts):
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _status_files(status_uri: str | Path, aws_conn_id: str, names) -> list[dict]:
    """The JSON files directly under ``status_uri`` (a path, ``file:``, ``s3:`` or ``s3a:`` URI)
    whose names ``names(name)`` accepts."""
    uri = urlparse(str(status_uri))
    if uri.scheme in ("", "file"):
        folder = Path(unquote(uri.path) if uri.scheme else str(status_uri))
        return [_read_local_json(p) for p in sorted(folder.iterdir() if folder.is_dir() else []) if names(p.name)]
    if uri.scheme in ("s3", "s3a"):
        # Spark writes s3a:// (Hadoop's connector) or s3:// (EMRFS); both name the same S3 object.
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=aws_conn_id)
        prefix = uri.path.strip("/") + "/"
        keys = hook.list_keys(bucket_name=uri.netloc, prefix=prefix, delimiter="/") or []
        return [json.loads(hook.read_key(key, uri.netloc)) for key in sorted(keys) if names(key.rsplit("/", 1)[-1])]
    raise ValueError(f"cannot read streaming progress from {status_uri!r}: use a local path, file:, s3: or s3a: URI")


def read_progress(status_uri: str | Path, aws_conn_id: str = "aws_default") -> list[dict]:
    """Every ``*.json`` progress file directly under ``status_uri``."""
    return _status_files(status_uri, aws_conn_id, lambda name: name.endswith(".json"))


def _time_in(status_uri: str | Path, aws_conn_id: str, file_name: str, field: str) -> int | None:
    found = _status_files(status_uri, aws_conn_id, lambda name: name == file_name)
    return int(found[0][field]) if found else None


def heartbeat_at_ms(status_uri: str | Path, aws_conn_id: str = "aws_default") -> int | None:
    """When the job last said it was running, or None (no heartbeat: a job of older code)."""
    return _time_in(status_uri, aws_conn_id, HEARTBEAT_FILE, "alive_at_ms")


def first_started_at_ms(status_uri: str | Path, aws_conn_id: str = "aws_default") -> int | None:
    """When the job first started with this status folder, or None (never started, or older code)."""
    return _time_in(status_uri, aws_conn_id, STARTED_FILE, "started_at_ms")


def consumed_kafka_offsets(progress: dict) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the end offset of the query's last batch, for its Kafka sources.

    Other sources have other offsets (the WebSocket source's is ``{"session": ..., "index": ...}``):
    they are left out, and have no lag to measure."""
    ends: dict[tuple[str, int], int] = {}
    for source in progress.get("sources", []):
        offsets = source.get("end_offset")
        if isinstance(offsets, str):
            offsets = json.loads(offsets)
        if not isinstance(offsets, dict):
            continue
        for topic, partitions in offsets.items():
            if not isinstance(partitions, dict):
                continue
            for partition, offset in partitions.items():
                ends[(topic, int(partition))] = int(offset)
    return ends


def end_offsets(bootstrap: str, partitions: list[tuple[str, int]], timeout_s: float = 15.0) -> dict[tuple[str, int], int]:
    """The broker's end offset (high watermark: the offset the next record gets) per (topic, partition)."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},
                                 request_timeout=timeout_s)
    return {(tp.topic, tp.partition): future.result(timeout_s).offset for tp, future in futures.items()}


def lag(bootstrap: str, consumed: dict[tuple[str, int], int]) -> int:
    """Records on the broker that the query has not consumed yet."""
    ends = end_offsets(bootstrap, sorted(consumed))
    return sum(max(0, ends[key] - offset) for key, offset in consumed.items())


def check(status_uri: str | Path, bootstrap: str, expected_queries: list[str],
          max_staleness_s: float, max_lag_records: int, now_ms: int | None = None,
          aws_conn_id: str = "aws_default") -> list[QueryHealth]:
    now_ms = now_ms or int(time.time() * 1000)
    by_name = {p["name"]: p for p in read_progress(status_uri, aws_conn_id)}
    problems, report = [], []
    started_at_ms = heartbeat = None
    for name in expected_queries:
        progress = by_name.get(name)
        if progress is None:
            # A new job has max_staleness_s from its first start to publish its first batch.
            if started_at_ms is None:
                started_at_ms = first_started_at_ms(status_uri, aws_conn_id) or 0
            since_start = (now_ms - started_at_ms) / 1000
            if started_at_ms and since_start <= max_staleness_s:
                report.append(QueryHealth(name, None, None, None, 0, seconds_since_start=since_start))
            else:
                problems.append(f"{name}: no progress published yet (is the job running?)")
            continue
        consumed = consumed_kafka_offsets(progress)
        health = QueryHealth(
            name=name,
            seconds_since_batch=(now_ms - int(progress["written_at_ms"])) / 1000,
            input_rows_per_second=progress.get("input_rows_per_second"),
            processed_rows_per_second=progress.get("processed_rows_per_second"),
            lag_records=lag(bootstrap, consumed) if consumed else 0,
        )
        report.append(health)
        if health.seconds_since_batch > max_staleness_s:
            # No batch for long: a Kafka query that has read everything and whose job is alive is
            # idle (a query runs no batch without new records), not stale.
            if heartbeat is None:
                heartbeat = heartbeat_at_ms(status_uri, aws_conn_id) or 0
            idle = consumed and health.lag_records == 0 and (now_ms - heartbeat) / 1000 <= max_staleness_s
            if not idle:
                problems.append(f"{name}: stale, no batch for {health.seconds_since_batch:.0f}s "
                                f"(limit {max_staleness_s:.0f}s)")
        if health.lag_records > max_lag_records:
            problems.append(f"{name}: lag {health.lag_records} records (limit {max_lag_records})")
    if problems:
        raise StreamingUnhealthy("; ".join(problems))
    return report


def new_batch(status_uri: str | Path, query: str, last_announced: int | None,
              aws_conn_id: str = "aws_default") -> int | None:
    """The id of ``query``'s last committed batch if it is not ``last_announced``, else None.
    For a query that counts the rows it writes (``last_output_batch_id`` in its progress,
    spark_apps/streaming/supervision.py), the last batch that wrote any: a batch without
    output is no new data."""
    progress = {p["name"]: p for p in read_progress(status_uri, aws_conn_id)}.get(query) or {}
    batch_id = progress["last_output_batch_id"] if "last_output_batch_id" in progress else progress.get("batch_id")
    return None if batch_id is None or batch_id == last_announced else int(batch_id)


def announce_new_batch(status_uri: str | Path, query: str, last_announced: int | None, what: str,
                       aws_conn_id: str = "aws_default") -> int:
    """What an announcing task of a health DAG runs (its outlet Asset gets an event when it
    succeeds): the id of ``query``'s batch committed since ``last_announced``, or a skip (no
    event) when there is none; ``what`` names the files the query writes, for the skip's reason."""
    from airflow.sdk.exceptions import AirflowSkipException

    batch_id = new_batch(status_uri, query, last_announced, aws_conn_id)
    if batch_id is None:
        raise AirflowSkipException(f"no {query} batch since batch {last_announced}: {what} are unchanged")
    return batch_id


def check_jobs(status_root: str, bootstrap: str, queries_by_job: dict[str, list[str]], max_staleness_s: float,
               max_lag_records: int, aws_conn_id: str = "aws_default") -> list[str]:
    """What a health DAG's task runs: :func:`check` for each job's queries (status under
    ``<status_root>/<job>``), printing and returning one line per query."""
    lines = []
    for job, queries in queries_by_job.items():
        for result in check(f"{status_root}/{job}", bootstrap, queries, max_staleness_s, max_lag_records,
                            aws_conn_id=aws_conn_id):
            print(result.line())
            lines.append(result.line())
    return lines
