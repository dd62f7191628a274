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
# The JVM jars (jvm/pom.xml, pinned by jvm/jars.sha256) into a folder outside git;
# does not start Maven when nothing changed.
.venv/bin/python -m include.platform.jvm resolve
