"""The data-quality record: one row in MySQL ``data_quality_runs`` per pipeline run and input.

Every batch job that quarantines input (the air-quality conversion, the access-log ingest)
records what it read, how many rows, how many were bad and why (counts by reason). The row is
keyed by (pipeline, run_key), so a rerun of the same input replaces its row instead of adding one.
The quarantined rows themselves stay in the lake; this table is the place to look first.

The job owns the table (as every job owns the tables it writes), so a results database that
only ever saw spark-submit, like an RDS instance reached from EMR, gets it on the first run.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from spark_apps.common.mysql import ResultsDb

TABLE = "data_quality_runs"

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
  pipeline      VARCHAR(64)   NOT NULL,
  run_key       VARCHAR(255)  NOT NULL,
  input_uri     VARCHAR(1024) NOT NULL,
  total_rows    BIGINT        NOT NULL,
  bad_rows      BIGINT        NOT NULL,
  reasons_json  TEXT          NULL,
  recorded_at   DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (pipeline, run_key)
)"""

# Databases bootstrapped before the table had its input column (MariaDB syntax).
ADD_INPUT_COLUMN = f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS input_uri VARCHAR(1024) NOT NULL DEFAULT ''"

UPSERT = (
    f"INSERT INTO {TABLE} (pipeline, run_key, input_uri, total_rows, bad_rows, reasons_json) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE input_uri = VALUES(input_uri), "
    "total_rows = VALUES(total_rows), bad_rows = VALUES(bad_rows), reasons_json = VALUES(reasons_json), "
    "recorded_at = CURRENT_TIMESTAMP"
)


def record_run(db: ResultsDb, pipeline: str, run_key: str, input_uri: str, total_rows: int, bad_rows: int,
               reasons: Mapping[str, int]) -> None:
    """Upsert the run's row. ``reasons``: bad-row count per reason (stored as JSON, largest first)."""
    if bad_rows != sum(reasons.values()):
        raise ValueError(f"bad_rows={bad_rows} but the reasons count {sum(reasons.values())}: {dict(reasons)}")
    ordered = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(CREATE_TABLE)
            cur.execute(ADD_INPUT_COLUMN)
            cur.execute(UPSERT, (pipeline, run_key, input_uri, int(total_rows), int(bad_rows), json.dumps(ordered)))
    finally:
        conn.close()


def read_run(db: ResultsDb, pipeline: str, run_key: str) -> dict | None:
    """The recorded row as a dict (reasons decoded), or None: for tests and the CLI."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW TABLES LIKE '{TABLE}'")
            if not cur.fetchone():
                return None
            cur.execute(f"SELECT input_uri, total_rows, bad_rows, reasons_json FROM {TABLE} "
                        "WHERE pipeline = %s AND run_key = %s", (pipeline, run_key))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    return {"input_uri": row[0], "total_rows": row[1], "bad_rows": row[2], "reasons": json.loads(row[3] or "{}")}
