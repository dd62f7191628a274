-- Tables of the results database that are not derived from a Spark DataFrame's schema.
-- Idempotent: safe to run on every bootstrap.

-- One row per pipeline run and input: what was read, what was quarantined and why.
CREATE TABLE IF NOT EXISTS data_quality_runs (
  pipeline      VARCHAR(64)  NOT NULL,
  run_key       VARCHAR(128) NOT NULL,
  total_rows    BIGINT       NOT NULL,
  bad_rows      BIGINT       NOT NULL,
  reasons_json  TEXT         NULL,
  recorded_at   DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (pipeline, run_key)
);
