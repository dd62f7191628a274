# syntax=docker/dockerfile:1
# Spark master and worker of the docker-compose platform.
#
# Base: the official apache/spark image of the same release as the pinned pyspark
# (requirements.lock: pyspark==4.2.0). Driver (spark-submit in the Airflow containers, client
# mode) and cluster must run the same Spark release. The plain Scala/Java 17 variant is used:
# its "-python3" sibling brings Ubuntu's Python 3.10, but PySpark refuses workers whose Python
# minor version differs from the driver's (3.11 in the Airflow image), so Python 3.11 is
# installed below with uv instead.
ARG SPARK_IMAGE=apache/spark:4.2.0-scala2.13-java17-ubuntu
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17

# ---- stage 1: connector jars = the `spark` group of jvm/pom.xml, the one manifest that also
# feeds `make deps` (include/platform/jvm.py) and the EMR steps. Resolved by Maven at BUILD time
# (never at run time: no --packages) and refused unless every jar is the one pinned in
# jvm/jars.sha256, no more, no less. The pom already leaves out what Spark ships
# (tests/stack/test_jvm_jars.py checks it against pyspark/jars, the distribution's jars).
# The same stage is in docker/airflow.Dockerfile (the client-mode driver needs the jars too).
FROM ${MAVEN_IMAGE} AS connector-jars
WORKDIR /build
COPY jvm/pom.xml jvm/jars.sha256 jvm/
RUN --mount=type=cache,target=/root/.m2 \
    mvn -q -B --strict-checksums -f jvm/pom.xml -P spark dependency:copy-dependencies \
        -DoutputDirectory=/opt/connector-jars -DincludeScope=runtime \
 && awk '$1 == "spark" { print $3 "  " $2 }' jvm/jars.sha256 > /tmp/spark.sha256 \
 && (cd /opt/connector-jars && sha256sum --strict --quiet -c /tmp/spark.sha256) \
 && awk '{ print $2 }' /tmp/spark.sha256 | LC_ALL=C sort > /tmp/pinned \
 && (cd /opt/connector-jars && ls -1 | LC_ALL=C sort) > /tmp/resolved \
 && diff -u /tmp/pinned /tmp/resolved

# ---- stage 2: the runtime image
FROM ${SPARK_IMAGE}
USER root

# uv: the same pinned release scripts/install.sh uses.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_NO_CACHE=1

# Python 3.11 for the executors' Python workers, with what spark_apps imports on executors
# (pyarrow/pandas for Arrow batches, PyMySQL with cryptography for MySQL 8's
# caching_sha2_password, boto3, protobuf, the Cassandra driver), every
# version constrained by requirements.lock. Kafka is read and written by Spark's own
# connector (JVM), so no Kafka client is needed on the executors. pyspark itself comes from the
# distribution (/opt/spark/python/lib), and the job code from --py-files spark_apps.zip.
COPY requirements.lock /tmp/requirements.lock
RUN uv venv --python 3.11 /opt/dataplatform/venv \
 && uv pip install --python /opt/dataplatform/venv/bin/python -c /tmp/requirements.lock \
        numpy pandas pyarrow pymysql cryptography boto3 protobuf cassandra-driver \
 && mkdir -p /opt/dataplatform/bin \
 && ln -s /opt/dataplatform/venv/bin/python /opt/dataplatform/bin/python \
 && rm /tmp/requirements.lock
# The same path as in the Airflow image: the driver sends its PYSPARK_PYTHON to the executors.
ENV PYSPARK_PYTHON=/opt/dataplatform/bin/python

COPY --from=connector-jars /opt/connector-jars/ /opt/spark/jars/
COPY docker/spark/spark-defaults.conf /opt/spark/conf/spark-defaults.conf

USER spark
