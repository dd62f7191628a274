from __future__ import annotations

import pytest
from stack_helpers import make_config

from include.platform import stack


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory):
    """Databases, broker and moto of the embedded stack (Airflow runs as `airflow dags test`)."""
    cfg = make_config(tmp_path_factory.mktemp("dp-home"))
    env = stack.up(cfg, with_airflow=False, echo=lambda _: None)
    yield cfg, env
    stack.down(cfg, echo=lambda _: None)
    stack.drop_results_db(cfg)


@pytest.fixture(scope="session")
def airflow_env(embedded_stack):
    """The stack's environment with a migrated Airflow metadata DB, for `airflow dags test`."""
    import subprocess
    import sys
    from pathlib import Path

    cfg, env = embedded_stack
    migrate = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return cfg, env
