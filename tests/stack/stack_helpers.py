"""Helpers for the stack tests: a private stack configuration and its cleanup."""
from __future__ import annotations

import uuid
from pathlib import Path

from include.platform import stack



def make_config(home: Path) -> stack.StackConfig:
    """A private stack: its own home, ports, metadata DB and results database/user."""
    suffix = uuid.uuid4().hex[:8]
    return stack.StackConfig(
        home=home,
        airflow_port=stack.free_port(),
        kafka_port=stack.free_port(),
        moto_port=stack.free_port(),
        metadata_db="sqlite",
        results_db=f"dp_it_{suffix}",
        results_user=f"dp_it_{suffix}",
    )


def drop_results_db(cfg: stack.StackConfig) -> None:
    from spark_apps.common.mysql import ResultsDb

    conn = ResultsDb.from_url(cfg.mysql_admin_url).connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{cfg.results_db}`")
            for host in ("localhost", "127.0.0.1", "%"):
                cur.execute(f"DROP USER IF EXISTS '{cfg.results_user}'@'{host}'")
    finally:
        conn.close()
