"""The embedded Kafka broker: Apache Kafka (the release pinned in ``jvm/pom.xml``) in KRaft mode.

One JVM that is both broker and controller (``process.roles=broker,controller``, a static
one-voter quorum), started from the ``kafka-broker`` jars that ``make deps`` resolved - the
classes ``bin/kafka-server-start.sh`` runs in a release tarball. Its log lives under
``$DP_HOME/kafka/data``, so topics and messages survive ``dp down`` / ``dp up`` and a crash;
the storage is formatted once (``kafka.tools.StorageTool format``, idempotent with
``--ignore-formatted``) with a cluster id kept in ``$DP_HOME/secrets``.

Topics are never created by producing to them (``auto.create.topics.enable=false``): the
platform declares them in one place (``settings.KAFKA_TOPICS``) and ``platform_bootstrap``
creates them. Readiness is a metadata request through the Kafka protocol.
"""
from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from include.platform import jvm
from include.platform.stack.service import Service, StackConfig, StackError, find_java, secret, tail

HEAP = "512m"
NODE_ID = 1
LOG4J2 = """\
# Written by the embedded stack (include/platform/stack/kafka.py).
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_dir}/server.log
appender.file.filePattern = {log_dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
appender.stdout.type = Console
appender.stdout.name = stdout
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
appender.stdout.filter.threshold.type = ThresholdFilter
appender.stdout.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRefs = file, stdout
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.stdout.ref = stdout
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""


def kafka_dir(cfg: StackConfig) -> Path:
    return cfg.home / "kafka"


def data_dir(cfg: StackConfig) -> Path:
    return kafka_dir(cfg) / "data"


def server_properties(cfg: StackConfig) -> str:
    """A single combined node, the settings of Kafka's own ``config/server.properties`` for one node."""
    props = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{cfg.kafka_controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{cfg.kafka_port},CONTROLLER://127.0.0.1:{cfg.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{cfg.kafka_port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir(cfg)),
        "num.partitions": 1,
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # Topics come from platform_bootstrap only, never from a producer's typo.
        "auto.create.topics.enable": "false",
        # A consumer group starts reading at once (the default waits 3 s for more members).
        "group.initial.rebalance.delay.ms": 0,
        # The log cleaner allocates this at start (128 MiB by default): small for a laptop.
        "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        "log.retention.hours": 168,
    }
    return "# Written by the embedded stack (include/platform/stack/kafka.py).\n" + "".join(
        f"{key}={value}\n" for key, value in props.items())


def _java_argv(cfg: StackConfig, main_class: str, *args: str) -> list[str]:
    try:
        classpath = ":".join(str(p) for p in jvm.classpath("kafka-broker"))
    except jvm.JarsError as exc:
        raise StackError(str(exc)) from None
    return [
        find_java(), f"-Xmx{HEAP}", f"-Xms{HEAP}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir(cfg) / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={cfg.log_dir / 'kafka'}",
        "-cp", classpath, main_class, *args,
    ]


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, as ``random-uuid``
    makes it - which also never returns one starting with "-" (a command line would read it as
    an option), so neither does this."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _format_storage(cfg: StackConfig) -> None:
    """Write the config files and format the log directory once (a second run changes nothing)."""
    folder = kafka_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (cfg.log_dir / "kafka").mkdir(parents=True, exist_ok=True)
    props = folder / "server.properties"
    props.write_text(server_properties(cfg))
    (folder / "log4j2.properties").write_text(LOG4J2.format(log_dir=cfg.log_dir / "kafka"))
    cluster_id = secret(cfg, "kafka_cluster_id", _cluster_id)
    log = cfg.log_dir / "kafka-format.log"
    argv = _java_argv(cfg, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                      f"--cluster-id={cluster_id}", "-c", str(props))
    with open(log, "ab") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if proc.returncode != 0:
        raise StackError(
            f"formatting Kafka's storage in {data_dir(cfg)} failed: {tail(log, 2)}; if the folder is corrupt or "
            f"from another cluster, move it away (its topics are lost) and run `dp up` again; full log: {log}"
        )


def service(cfg: StackConfig) -> Service:
    bootstrap = f"127.0.0.1:{cfg.kafka_port}"
    return Service(
        name="kafka",
        argv=_java_argv(cfg, "kafka.Kafka", str(kafka_dir(cfg) / "server.properties")),
        ready=lambda: kafka_ready(bootstrap),
        ports=(cfg.kafka_port, cfg.kafka_controller_port),
        port_setting="DP_KAFKA_PORT / DP_KAFKA_CONTROLLER_PORT",
        timeout=90,
        before_start=lambda: _format_storage(cfg),
    )


def kafka_ready(bootstrap: str) -> bool:
    """True when the broker answers a metadata request and has registered itself (KRaft)."""
    from confluent_kafka.admin import AdminClient

    from include.platform.stack.service import port_open

    if not port_open(int(bootstrap.rsplit(":", 1)[1])):
        return False
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
        return bool(metadata.brokers)
    except Exception:
        return False
