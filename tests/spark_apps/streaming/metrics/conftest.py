"""Generated Protobuf code for the metrics pipeline tests (a fresh clone has no *_pb2.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def compiled_protos():
    from include.platform.build import compile_protos

    return compile_protos()

