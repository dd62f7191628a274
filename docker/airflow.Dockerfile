# syntax=docker/dockerfile:1
# Airflow image of the docker-compose platform: apache/airflow 3.3.2 on Python 3.11 plus
# everything in requirements.lock, a Java 17 runtime for spark-submit (client mode: the Spark
# driver runs in the scheduler container, which LocalExecutor runs tasks in), and the same
# connector jars as the Spark cluster. DAGs and code are mounted, never baked in.
ARG SPARK_IMAGE=apache/spark:4.2.0-scala2.13-java17-ubuntu

FROM ${SPARK_IMAGE} AS spark

# Connector jars (spark-sql-kafka, hadoop-aws + AWS SDK): the driver needs them too.
FROM ${SPARK_IMAGE} AS connector-jars
USER root
COPY docker/spark/fetch-jars.sh /usr/local/bin/fetch-jars.sh
RUN bash /usr/local/bin/fetch-jars.sh /opt/connector-jars

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
COPY --chown=airflow:0 requirements.lock /tmp/requirements.lock
# apache-airflow pinned to the image's version, as the Airflow image docs require; the lock
# pins the same 3.3.2.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.lock
# Same trick as scripts/install.sh: apache-airflow-providers-apache-spark depends on
# pyspark-client, which writes its own copy of pyspark's Python files over the full pyspark.
# Reinstall pyspark last so its Python files and its jars are one release.
RUN pyspark_pin="$(grep -E '^pyspark==' /tmp/requirements.lock)" \
 && pip install --no-cache-dir --force-reinstall --no-deps "$pyspark_pin" \
 && rm /tmp/requirements.lock

COPY --from=connector-jars --chown=airflow:0 /opt/connector-jars/ /tmp/connector-jars/
RUN jars="$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
 && cp /tmp/connector-jars/*.jar "$jars"/ \
 && rm -rf /tmp/connector-jars \
 && ln -s "$(command -v python)" /opt/dataplatform/bin/python

# spark-submit reads spark-defaults.conf from here (s3a -> MinIO). The Python path is the same
# in the Spark image, because the driver sends its PYSPARK_PYTHON to the executors.
ENV SPARK_CONF_DIR=/opt/dataplatform/spark-conf \
    PYSPARK_PYTHON=/opt/dataplatform/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/dataplatform/bin/python \
    PYTHONPATH=/opt/airflow
