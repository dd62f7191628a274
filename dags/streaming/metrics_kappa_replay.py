"""Kappa replay of the metrics aggregates: rebuild a versioned table from the Kafka log, check it
against the live one, switch the view. Triggered by hand, with the parameters in the trigger form.

Reprocessing from the log instead of a batch layer. `replay` (spark_apps/streaming/metrics/replay.py)
reads `source_topic` from each partition's earliest retained offset (the topic keeps a week:
include/platform/topics.py, set by `platform_bootstrap`) to its end, through the pipeline's current
code (job B's decode and deduplication) and aggregation `version`
(spark_apps/streaming/metrics/minute_aggregates.py; 2 adds `p95`) into MySQL
`metric_minute_aggregates_v<version>`, replaced whole and atomically (a rerun gives the same table).

`compare_with_live` checks it against the table `metric_minute_aggregates_current` shows now
(job B's `metric_minute_aggregates` at first): over the minutes both cover (but the newest
`settle_minutes`), every window's event count equal and its sum equal within `tolerance`, no
window on one side only. Any difference fails the run before the switch.

`switch_view` then runs `CREATE OR REPLACE VIEW metric_minute_aggregates_current AS SELECT * FROM
metric_minute_aggregates_v<version>`: one statement, readers see the old or the new version. The old
table stays (drop it by hand once nobody reads it); `switch=false` replays and compares only.
"""
from __future__ import annotations

from airflow.sdk import DAG, Param, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE
from include.platform.runners import spark_job_tasks
from include.platform.topics import TOPICS
from include.streaming.replay_jobs import REPLAY_JOB
from spark_apps.streaming.metrics.versions import CURRENT_VERSION, DESCRIPTIONS

cfg = platform_settings.load()

with DAG(
    dag_id="metrics_kappa_replay",
    doc_md=__doc__,
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streaming", "kafka", "spark", "metrics", "kappa", "replay"],
    params={
        "source_topic": Param("metric-protobuf", type="string", title="Topic to replay",
                              enum=[t.name for t in TOPICS if t.value_format == "protobuf"],
                              description="read from its earliest retained offset to its end"),
        "version": Param(CURRENT_VERSION, type="integer", title="Aggregation version", enum=sorted(DESCRIPTIONS),
                         values_display={str(v): f"{v}: {d}" for v, d in DESCRIPTIONS.items()},
                         description="the table is metric_minute_aggregates_v<version> (1: job B's own table)"),
        "settle_minutes": Param(2, type="integer", minimum=0, title="Newest minutes left out of the comparison",
                                description="the live job may not have processed them yet"),
        "tolerance": Param(1e-9, type="number", minimum=0, title="Relative tolerance of the sums"),
        "switch": Param(True, type="boolean", title="Switch the view when the comparison passes"),
    },
) as dag:

    @task
    def compare_with_live(params=None) -> dict:
        from airflow.sdk import BaseHook

        from include.streaming import kappa
        from spark_apps.common.mysql import ResultsDb
        from spark_apps.streaming.metrics.versions import table_name

        db = ResultsDb.from_url(BaseHook.get_connection(cfg.mysql_conn_id).get_uri())
        conn = db.connect()
        try:
            replayed = table_name(int(params["version"]))
            live = kappa.live_table(conn)
            if live == replayed:
                print(f"{replayed} is already the live version: compared with itself, nothing to check")
                return {"live": live, "replayed": replayed, "windows": 0}
            result = kappa.compare(conn, replayed, live, int(params["settle_minutes"]), float(params["tolerance"]))
            print(result.line())
            return {"live": live, "replayed": replayed, "windows": result.windows, "events": result.events}
        finally:
            conn.close()

    @task
    def switch_view(comparison: dict, params=None) -> str:
        from airflow.sdk import BaseHook

        from include.streaming import kappa
        from spark_apps.common.mysql import ResultsDb

        if not params["switch"]:
            return f"not switched (switch=false): {kappa.VIEW} still shows {comparison['live']}"
        conn = ResultsDb.from_url(BaseHook.get_connection(cfg.mysql_conn_id).get_uri()).connect()
        try:
            before = kappa.switch_view(conn, comparison["replayed"])
        finally:
            conn.close()
        line = f"{kappa.VIEW}: {before} -> {comparison['replayed']} ({before} kept)"
        print(line)
        return line

    _, replayed = spark_job_tasks([REPLAY_JOB], cfg, cluster_name="dataplatform-kappa-replay")
    comparison = compare_with_live()
    replayed >> comparison
    switch_view(comparison)
