-- Tables of the results database that are not derived from a Spark DataFrame's schema.
-- Idempotent: safe to run on every bootstrap.

-- The WebSocket ingest job's sequence-number accounting (spark_apps/streaming/websocket/ingest.py,
-- which creates them too): per server run, messages received and seqs missing (lost: sent while no
-- reader was connected) or repeated; per micro-batch, its counts (a replayed batch is recorded once).
CREATE TABLE IF NOT EXISTS websocket_ingest_runs (
  run_id        VARCHAR(64) NOT NULL,
  first_seq     BIGINT      NOT NULL,
  last_seq      BIGINT      NOT NULL,
  received      BIGINT      NOT NULL,
  missing       BIGINT      NOT NULL,
  repeated      BIGINT      NOT NULL,
  updated_at    DATETIME    NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (run_id)
);

CREATE TABLE IF NOT EXISTS websocket_ingest_batches (
  stream_id     VARCHAR(64) NOT NULL,
  batch_id      BIGINT      NOT NULL,
  events        BIGINT      NOT NULL,
  dead_letters  BIGINT      NOT NULL,
  missing       BIGINT      NOT NULL,
  recorded_at   DATETIME    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (stream_id, batch_id)
);
