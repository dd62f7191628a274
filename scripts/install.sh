#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (requirements.lock). Idempotent and
# quick when nothing changed. Used by `make deps` (and so by `make demo` and `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "error: Python 3.11 is required ($PYTHON is $("$PYTHON" -V 2>&1)): install python3.11 or set PYTHON=/path/to/python3.11" >&2; exit 1; }

# System pieces: a JDK/JRE 17+ for Spark, and the MariaDB client headers that the
# MySQL provider's mysqlclient compiles against.
need_apt=()
pkg-config --exists mariadb 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null || need_apt+=(pkg-config libmariadb-dev)
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || need_apt+=(openjdk-17-jdk-headless)
# Maven resolves the JVM jars of jvm/pom.xml (Kafka broker, Spark's connectors).
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# A Compose CLI validates docker-compose.yaml in `make test` (`config`, no Docker engine needed):
# the docker compose plugin when there is one, else Debian's docker-compose.
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${need_apt[*]}"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
  else
    echo "error: missing system packages: run 'sudo apt-get install -y ${need_apt[*]}' and retry" >&2; exit 1
  fi
fi

install_python() {
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
  .venv/bin/uv pip install -q -p .venv/bin/python -r requirements.lock
  # apache-airflow-providers-apache-spark depends on pyspark-client, which writes its own copy
  # of pyspark's Python files over the full pyspark. Reinstall pyspark last so its Python
  # files and its jars are one release (tests/platform/test_pyspark_install.py guards this).
  pyspark_pin=$(grep -E '^pyspark==' requirements.lock)
  .venv/bin/uv pip install -q -p .venv/bin/python --reinstall --no-deps "$pyspark_pin"
  .venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
  touch "$stamp"
  echo "Python dependencies installed in .venv"
}

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ "$stamp" -ot requirements.lock ] || [ "$stamp" -ot pyproject.toml ]; then
  install_python
fi

# .venv-spark40: the Spark unit tests once more on Spark 4.0.x, the Spark of emr-spark-8.0.0, so
# that an API of Spark 4.1+ fails here and not on a cluster (`make test`). Only pyspark and what
# those tests import, at the lock's versions (requirements.lock as constraints); no Airflow: its
# Spark provider pulls pyspark-client, which would write 4.2's Python files over pyspark 4.0's.
SPARK40_PYSPARK=pyspark==4.0.2
SPARK40_PACKAGES=(pytest pytest-timeout pandas numpy pyarrow protobuf grpcio-tools pymysql cryptography confluent-kafka
                  cassandra-driver boto3 psutil pyyaml websockets fastavro matplotlib)
install_spark40() {
  [ -x .venv-spark40/bin/python ] || "$PYTHON" -m venv .venv-spark40
  grep -vE '^(pyspark|pyspark-client|py4j)==' requirements.lock > .venv-spark40/constraints.txt
  .venv/bin/uv pip install -q -p .venv-spark40/bin/python -c .venv-spark40/constraints.txt \
    "$SPARK40_PYSPARK" "${SPARK40_PACKAGES[@]}"
  echo "$SPARK40_PYSPARK ${SPARK40_PACKAGES[*]}" > "$stamp40"
  echo "Spark 4.0 test environment installed in .venv-spark40"
}
stamp40=.venv-spark40/.installed
if [ ! -f "$stamp40" ] || [ "$stamp40" -ot requirements.lock ] || [ "$stamp40" -ot scripts/install.sh ]; then
  install_spark40
fi
# The JVM jars (jvm/pom.xml, pinned by jvm/jars.sha256) into a folder outside git;
# does not start Maven when nothing changed.
.venv/bin/python -m include.platform.jvm resolve
