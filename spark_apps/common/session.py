"""One way to build a SparkSession for every job.

spark-submit (locally or on EMR) decides the master and resources; this only adds
the settings every job relies on, so that a job behaves the same everywhere.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

from pyspark.sql import SparkSession


def get_spark(app_name: str, extra_conf: dict[str, str] | None = None) -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
    # Timestamps in the data have no zone; interpret and print them as UTC on every
    # machine so results do not depend on the laptop's or the cluster's TZ.
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextlib.contextmanager
def temporary_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the actions run inside; the previous values (or unset) after."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
