# syntax=docker/dockerfile:1
# Airflow image of the docker-compose platform: apache/airflow 3.3.2 on Python 3.11 plus
# everything in requirements.lock, a Java 17 runtime for spark-submit (client mode: the Spark
# driver runs in the scheduler container, which LocalExecutor runs tasks in), and the same
# connector jars as the Spark cluster. DAGs and code are mounted, never baked in.
ARG SPARK_IMAGE=apache/spark:4.2.0-scala2.13-java17-ubuntu
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17

FROM ${SPARK_IMAGE} AS spark

# Connector jars: the `spark` group of jvm/pom.xml, resolved and checked against
# jvm/jars.sha256 exactly as in docker/spark.Dockerfile (same stage): the driver needs them too.
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

FROM apache/airflow:3.3.2-python3.11
USER root
# mysqlclient (MySQL provider) builds against these when no wheel matches, as in
# scripts/install.sh (pkg-config + libmariadb-dev) plus a compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libmariadb-dev build-essential \
 && apt-get autoremove -yqq --purge \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# Java 17: the very JVM of the Spark image (Eclipse Temurin 17), so driver and executors agree
# and the build does not depend on which OpenJDK the Debian release of the base image carries.
COPY --from=spark /opt/java/openjdk /opt/java/openjdk
ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:$PATH

# Writable directories the compose file mounts named volumes on (a new named volume takes
# the ownership of the directory it is mounted on): the spark_apps bundle and the
# SimpleAuthManager passwords file. Group 0 + g+w: works with any AIRFLOW_UID.
RUN mkdir -p /opt/airflow/build /opt/airflow/auth /opt/dataplatform/bin /opt/dataplatform/spark-conf \
 && chown -R airflow:0 /opt/airflow/build /opt/airflow/auth /opt/dataplatform \
 && chmod -R g+rwX /opt/airflow/build /opt/airflow/auth /opt/dataplatform
COPY docker/spark/spark-defaults.conf /opt/dataplatform/spark-conf/spark-defaults.conf

USER airflow
COPY --chown=airflow:0 requirements.lock pyproject.toml /tmp/
# The project's runtime dependencies (pyproject.toml), at the versions of requirements.lock
# (constraints): not the lock's dev tools (pytest, ruff, duckdb), nor moto (the embedded stack's
# S3; here MinIO). apache-airflow pinned to the image's version, as the Airflow image docs
# require; the lock pins the same 3.3.2.
RUN python -c "import tomllib; deps = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('moto')))" > /tmp/runtime-requirements.txt \
 && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/runtime-requirements.txt -c /tmp/requirements.lock \
 && rm /tmp/runtime-requirements.txt /tmp/pyproject.toml
# Same trick as scripts/install.sh: apache-airflow-providers-apache-spark depends on
# pyspark-client, which writes its own copy of pyspark's Python files over the full pyspark.
# Reinstall pyspark last so its Python files and its jars are one release.
RUN pyspark_pin="$(grep -E '^pyspark==' /tmp/requirements.lock)" \
 && pip install --no-cache-dir --force-reinstall --no-deps "$pyspark_pin" \
 && rm /tmp/requirements.lock

# The jars twice, from one verified copy:
#  * $DP_JARS_DIR/spark: where include/platform/jvm.py serves them from (as `make deps` leaves
#    them in ~/.cache/dataplatform/jars), so `dp build` (airflow-init) puts the same jars
#    into build/jars/ for the EMR steps. Installed by jvm.py itself (checksums against the
#    lock, stamp); the two modules it needs are copied for this step only.
#  * pyspark/jars: the client-mode driver's Spark classpath, as /opt/spark/jars in the cluster.
ENV DP_JARS_DIR=/opt/dataplatform/jars
COPY --from=connector-jars --chown=airflow:0 /opt/connector-jars/ /tmp/connector-jars/
COPY --chown=airflow:0 jvm/pom.xml jvm/jars.sha256 /tmp/dp/jvm/
COPY --chown=airflow:0 include/platform/jvm.py include/platform/settings.py /tmp/dp/include/platform/
RUN touch /tmp/dp/include/__init__.py /tmp/dp/include/platform/__init__.py \
 && (cd /tmp/dp && python -m include.platform.jvm install --group spark --from /tmp/connector-jars) \
 && jars="$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
 && cp "$DP_JARS_DIR"/spark/*.jar "$jars"/ \
 && rm -rf /tmp/connector-jars /tmp/dp \
 && ln -s "$(command -v python)" /opt/dataplatform/bin/python

# spark-submit reads spark-defaults.conf from here (s3a -> MinIO). The Python path is the same
# in the Spark image, because the driver sends its PYSPARK_PYTHON to the executors.
ENV SPARK_CONF_DIR=/opt/dataplatform/spark-conf \
    PYSPARK_PYTHON=/opt/dataplatform/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/dataplatform/bin/python \
    PYTHONPATH=/opt/airflow
