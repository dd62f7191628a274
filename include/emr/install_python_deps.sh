#!/bin/bash
# EMR bootstrap action (every node, before YARN starts): the Python packages the platform's
# Spark jobs import on the cluster, at the versions of requirements.lock. The jobs themselves
# arrive as spark_apps.zip through --py-files; pyspark is the cluster's own.
#
#   install_python_deps.sh <s3 prefix of build/bootstrap/> <python>
#
# The prefix holds requirements.txt (the packages, pinned: include/platform/spark_jobs.py
# EMR_PYTHON_PACKAGES) and constraints.txt (the whole lock, so that their dependencies get the
# lock's versions too). <python> is the interpreter PYSPARK_PYTHON names (/usr/bin/python3.11
# on emr-spark-8.0.0). Wheels only: nothing is compiled on the nodes.
set -euo pipefail
prefix=${1:?usage: install_python_deps.sh <s3 prefix of the bootstrap files> <python>}
python=${2:?usage: install_python_deps.sh <s3 prefix of the bootstrap files> <python>}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --quiet "$prefix/requirements.txt" "$work/requirements.txt"
aws s3 cp --quiet "$prefix/constraints.txt" "$work/constraints.txt"
"$python" -m pip --version >/dev/null 2>&1 || sudo "$python" -m ensurepip --upgrade
sudo "$python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
  -r "$work/requirements.txt" -c "$work/constraints.txt"
