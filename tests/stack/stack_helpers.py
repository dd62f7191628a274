"""Helpers for the stack tests: a private stack configuration (cleanup: ``stack.drop_results_db``)."""
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
        kafka_controller_port=stack.free_port(),
        moto_port=stack.free_port(),
        metadata_db="sqlite",
        results_db=f"dp_it_{suffix}",
        results_user=f"dp_it_{suffix}",
    )

