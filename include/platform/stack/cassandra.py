"""The embedded Cassandra node: Apache Cassandra (the release pinned in ``jvm/pom.xml``, 5.0.x).

One JVM running ``org.apache.cassandra.service.CassandraDaemon`` in the foreground from the
``cassandra`` jars that ``make deps`` resolved - what ``bin/cassandra -f`` runs in a release
tarball, with the JVM options of its ``conf/jvm-server.options`` / ``conf/jvm17-server.options``
(the ``--add-exports``/``--add-opens`` list, the jamm ``-javaagent`` of ``cassandra-env.sh``).
``before_start`` writes ``cassandra.yaml`` (the minimal single-node settings of Cassandra's own
``test/conf/cassandra.yaml``; 5.0 refuses unknown keys) and a logback configuration; data,
commit log, hints and saved caches live under ``$DP_HOME/cassandra``, so keyspaces and rows
survive ``dp down`` / ``dp up``. Loopback only: CQL on ``DP_CASSANDRA_PORT`` (9042), the
storage (gossip) port on ``DP_CASSANDRA_STORAGE_PORT`` (7000); no JMX port, so no nodetool.
Readiness is a CQL query through the native protocol (``cassandra-driver``).

Java: Cassandra 5.0 runs on Java 11 and 17 only (17 is production-ready from 5.0.5); on a
newer one it fails at start (Java 25: its security manager's ``Policy.setPolicy`` is refused),
so a newer default Java is replaced by a JDK 17 from ``/usr/lib/jvm`` when there is one.

Memory, measured on this machine (2 shared cores, 24 GiB): with the 512 MiB heap below the
node's RSS is 500-650 MB right after start and about 800 MB after 20,000 small inserts.
Cassandra calls ``mlockall``; as root (CAP_IPC_LOCK) that pins every mapped page (RSS about
950 MB at start), so the node starts without that capability, as an ordinary user's would (the
warning "Unable to lock JVM memory" in its log is expected). A first start (empty data folder)
takes 25-45 s of wall time, a restart about 15 s (mostly class loading and JIT; about 20 s of
CPU), a clean stop about 6 s (it flushes its memtables).
Logs: ``$DP_HOME/logs/cassandra.log`` (warnings and errors, the process's output) and
``$DP_HOME/logs/cassandra/system.log`` (everything at INFO).
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from include.platform import jvm
from include.platform.stack.service import Service, StackConfig, StackError, find_java, port_open

HEAP = "512m"
CLUSTER_NAME = "dataplatform"
HOST = "127.0.0.1"
# The native protocol release Cassandra 5.0 speaks by default (v6 is beta); set explicitly so
# the driver does not try newer ones first and log downgrades.
PROTOCOL_VERSION = 5
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"

# conf/jvm17-server.options of Cassandra 5.0 ("JPMS" section).
JPMS_OPTIONS = (
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
)

LOGBACK = """\
<!-- Written by the embedded stack (include/platform/stack/cassandra.py). -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{log_dir}/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{log_dir}/system.log.%i</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>50MB</maxFileSize>
    </triggeringPolicy>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <!-- The process's own output ($DP_HOME/logs/cassandra.log): warnings and errors, one line
       each, so that a failed start ends in the line that says why. -->
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level %date{{ISO8601}} %msg %replace(%ex{{0}}){{'\\s+', ' '}}%nopex%n</pattern></encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
"""


def cassandra_dir(cfg: StackConfig) -> Path:
    return cfg.home / "cassandra"


def data_dir(cfg: StackConfig) -> Path:
    return cassandra_dir(cfg) / "data"


def commitlog_dir(cfg: StackConfig) -> Path:
    return cassandra_dir(cfg) / "commitlog"


def log_dir(cfg: StackConfig) -> Path:
    return cfg.log_dir / "cassandra"


def _yaml_str(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a YAML double-quoted scalar


def cassandra_yaml(cfg: StackConfig) -> str:
    """One node on loopback (keys of Cassandra's ``test/conf/cassandra.yaml``; no others)."""
    home = cassandra_dir(cfg)
    seed = f"{HOST}:{cfg.cassandra_storage_port}"
    return f"""\
# Written by the embedded stack (include/platform/stack/cassandra.py). Cassandra 5.0 refuses
# unknown keys: add only keys of its conf/cassandra.yaml.
cluster_name: {_yaml_str(CLUSTER_NAME)}
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
listen_address: {HOST}
rpc_address: {HOST}
storage_port: {cfg.cassandra_storage_port}
start_native_transport: true
native_transport_port: {cfg.cassandra_port}
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: {_yaml_str(seed)}
data_file_directories:
  - {_yaml_str(data_dir(cfg))}
commitlog_directory: {_yaml_str(commitlog_dir(cfg))}
saved_caches_directory: {_yaml_str(home / "saved_caches")}
hints_directory: {_yaml_str(home / "hints")}
cdc_raw_directory: {_yaml_str(home / "cdc_raw")}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
auto_snapshot: false
# A disk or commit log error ends the process (the default, "stop", leaves a JVM running that
# serves nothing): `dp up` / `dp status` then see that it is not running.
disk_failure_policy: die
commit_failure_policy: die
"""


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(?:1\.)?(\d+)', out)
    return int(match.group(1)) if match else 0


def find_java17() -> str:
    """A Java 17 for Cassandra 5.0: the stack's Java when it is 17, else a JDK 17 of /usr/lib/jvm."""
    java = find_java()
    major = _java_major(java)
    if major == 17:
        return java
    for candidate in sorted(glob.glob("/usr/lib/jvm/*17*/bin/java")):
        if os.access(candidate, os.X_OK) and _java_major(candidate) == 17:
            return candidate
    raise StackError(
        f"Cassandra 5.0 needs Java 17 but {java} is version {major or '?'} and /usr/lib/jvm has no Java 17: "
        "install openjdk-17-jre-headless (apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at a JDK 17"
    )


def _java_argv(cfg: StackConfig) -> list[str]:
    try:
        jars = jvm.classpath("cassandra")
    except jvm.JarsError as exc:
        raise StackError(str(exc)) from None
    jamm = [p for p in jars if p.name.startswith("jamm-")]
    if not jamm:
        raise StackError(f"the 'cassandra' JVM jars in {jars[0].parent} have no jamm jar: delete the folder and run `make deps`")
    home = cassandra_dir(cfg)
    argv = [
        find_java17(), f"-Xms{HEAP}", f"-Xmx{HEAP}", "-Xss256k",
        # conf/jvm-server.options and the G1 settings of conf/jvm17-server.options (less the
        # 16 MiB region size, meant for large heaps).
        "-ea", "-da:net.openhft...", "-XX:+PerfDisableSharedMem", "-Djava.net.preferIPv4Stack=true",
        "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1",
        "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=300", "-XX:InitiatingHeapOccupancyPercent=70",
        # cassandra-env.sh kills the JVM on OutOfMemoryError (it may corrupt data otherwise).
        "-XX:+ExitOnOutOfMemoryError",
        "-Djdk.attach.allowAttachSelf=true", *JPMS_OPTIONS,
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dio.netty.allocator.useCacheForAllThreads=true", "-Dio.netty.allocator.maxOrder=11",
        f"-javaagent:{jamm[0]}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.config={(home / 'cassandra.yaml').as_uri()}",
        f"-Dcassandra.storagedir={home}",
        f"-Dcassandra.logdir={log_dir(cfg)}",
        f"-Dcassandra.triggers_dir={home / 'triggers'}",
        f"-Dlogback.configurationFile={home / 'logback.xml'}",
        "-cp", ":".join(str(p) for p in jars), MAIN_CLASS,
    ]
    # As root, mlockall would pin the whole heap and every mapped file in RAM: start the JVM
    # without CAP_IPC_LOCK, as an ordinary user's (8 MiB RLIMIT_MEMLOCK) would.
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        argv = [setpriv, "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--", *argv]
    return argv


def _write_config(cfg: StackConfig) -> None:
    home = cassandra_dir(cfg)
    for folder in (home, home / "triggers", log_dir(cfg)):
        folder.mkdir(parents=True, exist_ok=True)
    (home / "cassandra.yaml").write_text(cassandra_yaml(cfg))
    (home / "logback.xml").write_text(LOGBACK.format(log_dir=log_dir(cfg)))


def service(cfg: StackConfig) -> Service:
    port = cfg.cassandra_port
    return Service(
        name="cassandra",
        argv=_java_argv(cfg),
        ready=lambda: cassandra_ready(port),
        ports=(cfg.cassandra_port, cfg.cassandra_storage_port),
        port_setting="DP_CASSANDRA_PORT / DP_CASSANDRA_STORAGE_PORT",
        timeout=180,
        before_start=lambda: _write_config(cfg),
    )


def connect(port: int, host: str = HOST, timeout: float = 10.0, metadata: bool = True):
    """A driver ``Cluster`` for the node (the caller shuts it down): protocol v5, this host only."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=timeout)
    return Cluster(
        [host], port=port, protocol_version=PROTOCOL_VERSION,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout, control_connection_timeout=timeout,
        schema_metadata_enabled=metadata, token_metadata_enabled=metadata,
    )


def release_version(port: int, host: str = HOST, timeout: float = 5.0) -> str:
    """``release_version`` of ``system.local`` through the native protocol."""
    cluster = connect(port, host, timeout, metadata=False)
    try:
        return cluster.connect().execute("SELECT release_version FROM system.local").one().release_version
    finally:
        cluster.shutdown()


def cassandra_ready(port: int, host: str = HOST) -> bool:
    """True when the node answers a CQL query (its native port opens last in its start)."""
    if not port_open(port, host):
        return False
    try:
        return bool(release_version(port, host))
    except Exception:
        return False
