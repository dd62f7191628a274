"""Run streaming queries so that Airflow can supervise them.

* Progress: after every micro-batch the query's last progress (batch id, time, input
  and processing rates, per-phase durations, end offsets) is written to ``<status_uri>/<query>.json``; the
  health task of the supervisor DAG reads it (staleness, rates) and compares the end
  offsets with the broker's to compute the consumer lag.
* Graceful stop: creating ``<status_uri>/STOP`` makes the job stop each query *between*
  micro-batches (never in the middle of one), write ``<status_uri>/STOPPED`` once every
  query has stopped, and exit 0. `dp stream-stop` creates the marker (`--wait` waits for
  ``STOPPED``); the next submission removes both.
* Failure: any query failing ends the job with an error, so the Airflow task fails and
  its retry resubmits the job, which resumes from its checkpoint.
"""
from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Callable

from spark_apps.common import lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)
STOP_MARKER = "STOP"
STOPPED_MARKER = "STOPPED"  # written after a graceful stop: the checkpoint is free for another run
# When the job first started with this status folder (no .json suffix: not a query's progress).
STARTED_MARKER = "STARTED"
# Rewritten while the job runs: tells an idle job (nothing to read, so no batch) from a dead one.
HEARTBEAT_FILE = "HEARTBEAT"
HEARTBEAT_SECONDS = 60.0


def progress_uri(status_uri: str, query_name: str) -> str:
    return lake.join(status_uri, f"{query_name}.json")


def _first_value(observation) -> float:
    """The first value of an observation (a Row, a list or a dict of name -> value)."""
    values = list(observation.values()) if isinstance(observation, dict) else list(observation)
    return float(values[0]) if values and values[0] is not None else 0.0


def stop_between_batches(query: "StreamingQuery", timeout_s: float | None = None) -> None:
    """Stop the query once no micro-batch runs (at most ``timeout_s`` later): ``query.stop()``
    interrupts a running batch, whose foreachBatch side effects may then be half done."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.02)
    query.stop()


def last_output_batch(query: "StreamingQuery", previous: int | None) -> tuple[bool, int | None]:
    """Whether the query observes its own output (a ``DataFrame.observe`` named after the query,
    counting the rows it writes, e.g. the energy join's), and the latest batch in which that
    count was positive: of Spark's recent progress (the last hundred batches, so none is missed
    between two polls), else ``previous``. A batch may commit without writing a row (a join
    waiting for its watermark): announcing it as new data would run the consumers for nothing."""
    if query.name not in ((query.lastProgress or {}).get("observedMetrics") or {}):
        return False, previous  # every batch of an observing query carries its observation
    observes, last = False, previous
    for progress in query.recentProgress or []:
        observation = (progress.get("observedMetrics") or {}).get(query.name)
        if observation is None:
            continue
        observes = True
        if _first_value(observation) > 0 and (last is None or progress.get("batchId") > last):
            last = progress.get("batchId")
    return observes, last


def write_progress(spark: "SparkSession", status_uri: str, query: "StreamingQuery",
                   output_batches: dict[str, int | None] | None = None) -> None:
    """Publish the query's last progress; ``output_batches`` carries each query's last batch
    with output between calls (:func:`last_output_batch`)."""
    progress = query.lastProgress
    if not progress:
        return
    output_batches = {} if output_batches is None else output_batches
    observes, last_output = last_output_batch(query, output_batches.get(query.name))
    output_batches[query.name] = last_output
    record = {
        "name": query.name,
        "id": str(query.id),
        "run_id": str(query.runId),
        "batch_id": progress.get("batchId"),
        "batch_timestamp": progress.get("timestamp"),
        "written_at_ms": int(time.time() * 1000),
        "num_input_rows": progress.get("numInputRows"),
        "input_rows_per_second": progress.get("inputRowsPerSecond"),
        "processed_rows_per_second": progress.get("processedRowsPerSecond"),
        # Where the batch's time went (ms): latestOffset, queryPlanning, walCommit,
        # addBatch (the work and the sink), commitOffsets, triggerExecution (all).
        "duration_ms": progress.get("durationMs"),
        "sources": [
            {"description": s.get("description"), "end_offset": s.get("endOffset"),
             "latest_offset": s.get("latestOffset")}
            for s in progress.get("sources", [])
        ],
        # Counts a query publishes with DataFrame.observe (e.g. its dead letters), and what its
        # stateful operators hold and dropped as later than the watermark.
        "observed_metrics": progress.get("observedMetrics") or {},
        "state_operators": [
            {"name": o.get("operatorName"), "rows": o.get("numRowsTotal"),
             "dropped_by_watermark": o.get("numRowsDroppedByWatermark")}
            for o in progress.get("stateOperators", [])
        ],
    }
    if observes:
        # The latest batch that wrote rows (None: none yet since the job started): what the
        # health DAGs announce as new data (include/streaming/health.py new_batch).
        record["last_output_batch_id"] = last_output
    lake.write_text(spark, progress_uri(status_uri, query.name), json.dumps(record, default=str))


def run_until_stopped(
    spark: "SparkSession",
    queries: list["StreamingQuery"],
    status_uri: str,
    poll_seconds: float = 2.0,
) -> None:
    """Block while the queries run; publish progress and a heartbeat (every HEARTBEAT_SECONDS);
    stop gracefully on the STOP marker."""
    stop_marker = lake.join(status_uri, STOP_MARKER)
    last_batch: dict[str, object] = {}
    output_batches: dict[str, int | None] = {}
    last_heartbeat = 0.0
    while True:
        if time.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
            lake.write_text(spark, lake.join(status_uri, HEARTBEAT_FILE),
                            json.dumps({"alive_at_ms": int(time.time() * 1000)}))
            last_heartbeat = time.monotonic()
        for query in queries:
            exc = query.exception()
            if exc is not None:
                for other in queries:
                    if other.isActive:
                        other.stop()
                raise RuntimeError(f"streaming query {query.name} failed: {exc}")
            progress = query.lastProgress
            if progress and last_batch.get(query.name) != progress.get("batchId"):
                last_batch[query.name] = progress.get("batchId")
                write_progress(spark, status_uri, query, output_batches)
        if lake.exists(spark, stop_marker):
            for query in queries:
                stop_between_batches(query)  # the stop never cuts a micro-batch
                write_progress(spark, status_uri, query, output_batches)
            lake.write_text(spark, lake.join(status_uri, STOPPED_MARKER), json.dumps({"stopped_at_ms": int(time.time() * 1000)}))
            log.info("stopped gracefully on %s", stop_marker)
            return
        if not any(q.isActive for q in queries):
            return  # availableNow runs end by themselves
        time.sleep(poll_seconds)


# What Spark says when the Python process of a streaming Python Data Source did not connect back
# in time (spark-core's PythonWorkerFactory.createSimpleWorker).
PYTHON_WORKER_START_TIMEOUT = "Python worker failed to connect back"


def run_restarting_slow_python_starts(
    spark: "SparkSession",
    start: "Callable[[], StreamingQuery]",
    status_uri: str | None,
    attempts: int = 10,
    wait_seconds: float = 15.0,
) -> None:
    """Run the query ``start()`` returns (as :func:`run_until_stopped`, or until it ends without
    ``status_uri``), starting it again in this application when it failed before its first
    micro-batch because the Python process of its streaming Python Data Source did not start in time.

    Why: at query start Spark launches the source's Python planner process
    (``PythonStreamingSourceRunner``) and waits a hard-coded 10 s for it to connect back
    (``PythonWorkerFactory.createSimpleWorker``; no setting changes it in Spark 4.0-4.2). Importing
    pyspark there takes about a second of CPU, which on a loaded laptop (the whole demo stack on two
    cores) can take longer than 10 s of wall-clock time. Such a failure is transient and nothing was
    read yet: starting the query again from its checkpoint is what an Airflow retry would do, without
    a new JVM (whose start costs the loaded machine far more CPU than the Python process). The wait
    grows with each attempt; any other failure, or one after the first batch, ends the job as before.
    """
    for attempt in range(1, attempts + 1):
        query = start()
        try:
            if status_uri:
                run_until_stopped(spark, [query], status_uri)
            else:
                query.awaitTermination()
            return
        except Exception:
            failure = str(query.exception() or "")
            if (query.lastProgress is not None or PYTHON_WORKER_START_TIMEOUT not in failure
                    or attempt == attempts):
                raise
            pause = wait_seconds * attempt
            log.warning("query %s: its Python source process did not start in Spark's 10 s (attempt %d of %d, "
                        "machine loaded?); starting it again in %.0f s", query.name, attempt, attempts, pause)
            time.sleep(pause)


def trigger_options(available_now: bool, trigger_seconds: float) -> dict:
    """Keyword arguments of ``DataStreamWriter.trigger``: availableNow (process what is there,
    then stop), else a ``processingTime`` interval with fractions of a second kept (0 = back
    to back)."""
    if available_now:
        return {"availableNow": True}
    return {"processingTime": f"{round(trigger_seconds * 1000)} milliseconds"}


def add_streaming_arguments(parser, trigger_seconds: float) -> None:
    """The command-line options every supervised streaming job takes."""
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--kafka-options", help="JSON object of further Kafka client settings "
                        "(TLS/SASL; default $DP_KAFKA_OPTIONS), see spark_apps/streaming/kafka_io.py")
    parser.add_argument("--checkpoint", required=True, help="checkpoint URI (file://, s3://, s3a://)")
    parser.add_argument("--trigger-seconds", type=float, default=trigger_seconds,
                        help="micro-batch interval, fractions allowed (a batch that takes longer is followed at once)")
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument("--starting-offsets", default="earliest", help="only for a new checkpoint")
    parser.add_argument("--available-now", action="store_true",
                        help="process what is in the topic now, then stop (tests, backfills)")
    parser.add_argument("--status-uri", help="where progress files and the STOP marker live; "
                        "without it, the job just waits for its queries")


def prepare_status(spark: "SparkSession", status_uri: str) -> None:
    """At a job's start: no STOP left from the last stop, no STOPPED while it runs, and a STARTED
    file holding when a job first started with this status folder. STARTED is kept across
    resubmissions: the health check gives a new job that long to publish its first batch (JVM
    start, first micro-batch), but not a job that dies at every start."""
    for marker in (STOP_MARKER, STOPPED_MARKER):
        lake.delete(spark, lake.join(status_uri, marker))
    started = lake.join(status_uri, STARTED_MARKER)
    if not lake.exists(spark, started):
        lake.write_text(spark, started, json.dumps({"started_at_ms": int(time.time() * 1000)}))
