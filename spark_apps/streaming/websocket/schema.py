"""The Avro schemas of ``websocket-events``, kept in the repository (``schemas/*.avsc``).

There is no schema registry: a record's writer schema is named by its Kafka header
``avro.schema`` (e.g. ``websocket_event.v1``), and every version ever written stays in
``schemas/`` so old records stay readable. A reader picks the writer schema by the header and
resolves it to its own (newer) reader schema: Avro schema resolution fills fields the writer
did not have from their defaults, which is why a new version may only *add* fields with a
default (README "WebSocket pipeline": schema evolution, and how to add a registry instead).

Read with :func:`pkgutil.get_data`, so the schemas are found inside ``spark_apps.zip``
(``--py-files``) as well as in the source tree.
"""
from __future__ import annotations

import json
import pkgutil
from functools import lru_cache

HEADER = "avro.schema"
CURRENT = "websocket_event.v1"
# Every version that has been written to the topic, oldest first: readers decode all of them.
VERSIONS = ("websocket_event.v1",)


@lru_cache(maxsize=None)
def schema_json(version: str = CURRENT) -> str:
    """The ``.avsc`` text of ``version`` (``ValueError`` for a version the repository lacks)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown Avro schema {version!r} (known: {', '.join(VERSIONS)})")
    data = pkgutil.get_data(__name__.rsplit(".", 1)[0], f"schemas/{version}.avsc")
    if data is None:
        raise FileNotFoundError(f"schemas/{version}.avsc is missing from the bundle")
    return data.decode("utf-8")


def schema(version: str = CURRENT) -> dict:
    return json.loads(schema_json(version))
