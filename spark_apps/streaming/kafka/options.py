"""Option parsing shared by the Kafka source and sink.

Option names follow Spark's native Kafka connector (``kafka.bootstrap.servers``,
``subscribe``, ``startingOffsets``, ...) so that the same pipeline code can run
against either implementation. ``kafka.*`` options are handed to librdkafka with the
prefix removed; most common Java client settings (``security.protocol``,
``sasl.*``, ``ssl.*``) have the same names there.
"""
from __future__ import annotations

import json
from typing import Mapping

# Offsets in startingOffsets JSON, as in the native connector.
EARLIEST = -2
LATEST = -1

# Settings that would let librdkafka move offsets or commit them behind Spark's back.
# The query checkpoint is the only place offsets live, so these are refused.
_FORBIDDEN_CLIENT_SETTINGS = frozenset(
    {"group.id", "enable.auto.commit", "auto.offset.reset", "enable.auto.offset.store"}
)


def client_settings(options: Mapping[str, str]) -> dict[str, str]:
    """The ``kafka.*`` options as a librdkafka configuration (prefix removed)."""
    settings = {}
    for key, value in options.items():
        if not key.lower().startswith("kafka."):
            continue
        name = key[len("kafka."):]
        if name in _FORBIDDEN_CLIENT_SETTINGS:
            raise ValueError(
                f"Option {key!r} is not supported: offsets are tracked in the query "
                "checkpoint, never by Kafka consumer groups."
            )
        settings[name] = str(value)
    if not settings.get("bootstrap.servers"):
        raise ValueError("Option 'kafka.bootstrap.servers' is required.")
    return settings


def get_option(options: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """Spark passes data source options with case-insensitive keys; look them up that way."""
    for key, value in options.items():
        if key.lower() == name.lower():
            return value
    return default


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"Option {name!r} must be true or false, got {value!r}.")


def parse_positive_int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"Option {name!r} must be a positive integer, got {value!r}.") from None
    if number <= 0:
        raise ValueError(f"Option {name!r} must be a positive integer, got {value!r}.")
    return number


def parse_topics(value: str | None) -> list[str]:
    topics = [t.strip() for t in (value or "").split(",") if t.strip()]
    if not topics:
        raise ValueError("Option 'subscribe' must name at least one topic (comma separated).")
    return topics


def parse_starting_offsets(value: str | None) -> str | dict[str, dict[int, int]]:
    """``earliest``, ``latest`` or ``{"topic": {"0": 23, "1": -2}}`` (-2 earliest, -1 latest)."""
    if value is None:
        return "latest"
    text = str(value).strip()
    if text.lower() in ("earliest", "latest"):
        return text.lower()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"Option 'startingOffsets' must be earliest, latest or JSON, got {value!r}."
        ) from None
    if not isinstance(parsed, dict):
        raise ValueError("Option 'startingOffsets' JSON must map topic -> {partition: offset}.")
    result: dict[str, dict[int, int]] = {}
    for topic, partitions in parsed.items():
        if not isinstance(partitions, dict):
            raise ValueError(
                f"Option 'startingOffsets': topic {topic!r} must map partition -> offset."
            )
        result[topic] = {int(p): int(o) for p, o in partitions.items()}
        for partition, offset in result[topic].items():
            if offset < EARLIEST:
                raise ValueError(
                    f"Option 'startingOffsets': offset {offset} for {topic}-{partition} is "
                    "invalid (use >= 0, -2 for earliest or -1 for latest)."
                )
    return result
