"""Every Kafka topic the platform owns, declared once: name, partitions, retention.

``platform_bootstrap`` creates them (:func:`ensure_topics`); no job or producer relies on the
broker creating a topic (the embedded broker and docker-compose's run with
``auto.create.topics.enable=false``). Re-running the bootstrap applies a changed
declaration: missing topics are created, partitions are added (never removed: Kafka cannot),
and the retention is set on existing topics.

Retention is what makes a topic replayable (Kappa-style reprocessing reads a topic from its
earliest retained offset): the source topics keep a week, dead letters a month.
"""
from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int  # -1: keep forever
    purpose: str
    # How the values are encoded, for tools that print them (`dp kafka get`): "json", "protobuf"
    # (spark_apps/streaming/metrics/metric.proto) or "avro" (the schema named by the record's
    # `avro.schema` header, spark_apps/streaming/websocket/schemas/).
    value_format: str = "json"

    @property
    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms)}


TOPICS: tuple[Topic, ...] = (
    Topic("metric-message", 3, 7 * DAY_MS, "server metrics as JSON, from the producers (job A's input)"),
    Topic("metric-protobuf", 3, 7 * DAY_MS, "validated metrics as Protobuf (job A's output, job B's input; "
          "the Kappa replay's source)", "protobuf"),
    Topic("metric-dead-letter", 1, 30 * DAY_MS, "records jobs A and B could not use, with reason and source offset"),
    Topic("weather-raw", 3, 7 * DAY_MS, "OpenWeatherMap current-weather responses as returned, keyed by city id "
          "(the weather job's input)"),
    Topic("weather-dead-letter", 1, 30 * DAY_MS, "responses the weather job could not use, with reason and source offset"),
    Topic("turnstile-readings", 3, 7 * DAY_MS, "MTA turnstile readings as JSON with the files' fields, keyed by "
          "turnstile (C/A:UNIT:SCP; the turnstile job's input)"),
    Topic("turnstile-dead-letter", 1, 30 * DAY_MS, "readings the turnstile job could not use, with reason and source offset"),
    Topic("turnstile-late", 1, 30 * DAY_MS, "readings older than the turnstile job's watermark when they arrived "
          "(their windows were final), with the watermark and source offset"),
    Topic("energy-readings", 3, 7 * DAY_MS, "household smart-meter readings as JSON, keyed by household id "
          "(the energy x weather join's input, with weather-raw)"),
    Topic("energy-dead-letter", 1, 30 * DAY_MS, "readings the energy x weather job could not use, with reason and "
          "source offset"),
    Topic("app-events", 3, 7 * DAY_MS, "short-video engagement events as JSON, keyed by user id (the app-events "
          "job's input; spark_apps/streaming/app_events/schema.py)"),
    Topic("app-events-dead-letter", 1, 30 * DAY_MS, "events the app-events job could not use, with reason and "
          "source offset"),
    # A WebSocket cannot replay (README "WebSocket pipeline"): this topic is where its messages
    # become replayable, so it keeps them as long as the other source topics.
    Topic("websocket-events", 3, 7 * DAY_MS, "WebSocket thread samples as Avro (websocket_event.avsc), keyed by "
          "threadname (the thread-stats job's input)", "avro"),
    Topic("websocket-thread-stats", 1, 7 * DAY_MS, "per-thread windowed statistics as JSON, keyed by threadname and "
          "window start"),
    Topic("websocket-dead-letter", 1, 30 * DAY_MS, "WebSocket messages the ingest job could not use, with reason and "
          "the raw text"),
)


def ensure_topics(admin, topics: tuple[Topic, ...] = TOPICS, timeout: float = 30.0) -> list[str]:
    """Make the broker hold ``topics`` as declared; ``admin`` is a confluent-kafka AdminClient.

    Returns one line per change made (empty when everything was already as declared).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

    existing = admin.list_topics(timeout=timeout).topics
    changes: list[str] = []
    missing = [t for t in topics if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, config=t.config) for t in missing],
            operation_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout)
                changes.append(f"created {name}")
            except KafkaException as exc:  # created meanwhile by a concurrent bootstrap: fine
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    grow = [t for t in topics if t.name in existing and len(existing[t.name].partitions) < t.partitions]
    if grow:
        for name, future in admin.create_partitions(
                [NewPartitions(t.name, t.partitions) for t in grow], operation_timeout=timeout).items():
            future.result(timeout)
            changes.append(f"{name}: partitions raised")
    present = [t for t in topics if t.name in existing]
    if present:
        resources = [ConfigResource(ConfigResource.Type.TOPIC, t.name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in t.config.items()])
            for t in present]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout)
    metadata = admin.list_topics(timeout=timeout).topics
    wrong = [t.name for t in topics if t.name not in metadata or len(metadata[t.name].partitions) < t.partitions]
    if wrong:
        raise RuntimeError(f"topics not as declared on the broker after the bootstrap: {wrong}")
    return changes
