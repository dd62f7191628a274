"""The lake's datasets as tables by name (the seed's "external tables"): ``lake.energy_joined``,
``lake.energy_unmatched``, ``lake.air_quality_hourly``, ``lake.air_quality_daily``.

Every table is an *external* Parquet table over its lake folder (``CREATE TABLE ... USING parquet
LOCATION ...``): the catalog holds only names, schemas and partitions, never data, and dropping a
table leaves its files alone. :func:`register_tables` is idempotent and runs at the start of every
job that queries by name, so the catalog is a cache of the lake's layout that costs nothing to
lose. It also recovers the partitions (``ALTER TABLE ... RECOVER PARTITIONS``): Spark keeps a
partitioned table's partitions in the catalog, so the days the streaming join wrote since the last
registration are invisible to queries until then.

Which catalog holds them is the session's (``spark.sql.catalogImplementation``, fixed when the
session starts; :func:`session_conf` gives the settings):

* ``derby`` (embedded stack): Spark's Hive support with an embedded Derby metastore in a folder
  of the stack's home: a persistent catalog, so a later application (another DAG's job, a
  ``pyspark`` shell given the same settings) finds the tables by name. pyspark's own jars carry
  Hive 2.3 and Derby, nothing to add. Embedded Derby admits *one JVM at a time*: a second
  application opening the same folder while one runs fails ("Another instance of Derby may have
  already booted the database"); pyspark ships no Derby network server, and a metastore in the
  stack's MariaDB would need a JDBC driver jar the platform does not pin. Hence only batch jobs
  that run one at a time (the analysis DAG, ``max_active_runs=1``) use it, never the
  long-running streaming jobs.
* ``glue`` (EMR): Hive support with the AWS Glue Data Catalog as the metastore (EMR's own
  client factory): shared by every cluster and by Athena.
* ``session``: Spark's in-memory catalog; the same statements make the tables exist for the
  application only (views by another name), for runs that must not touch a shared catalog.

No Spark import at module level: DAG files import :func:`session_conf` at parse time.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from spark_apps.common.lake import join

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DATABASE = "lake"
CATALOGS = ("derby", "glue", "session")
# EMR's Hive client factory for the Glue Data Catalog (EMR documentation, "Use the AWS Glue Data
# Catalog as the metastore for Spark SQL").
GLUE_CLIENT_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"


@dataclass(frozen=True)
class LakeTable:
    name: str
    folder: str  # relative to the lake URI
    columns: tuple[tuple[str, str], ...]  # (name, Spark SQL type), partition columns included
    partition_columns: tuple[str, ...] = ()
    comment: str = ""

    def qualified(self, database: str = DATABASE) -> str:
        return f"`{database}`.`{self.name}`"


def _energy_tables() -> list[LakeTable]:
    from spark_apps.streaming.energy_weather import layout

    return [
        LakeTable("energy_joined", layout.JOINED_DIR, layout.JOINED_COLUMNS, (layout.PARTITION_COLUMN,),
                  "meter readings joined with the weather of their region (streaming join)"),
        LakeTable("energy_unmatched", layout.UNMATCHED_DIR, layout.UNMATCHED_COLUMNS, (layout.PARTITION_COLUMN,),
                  "meter readings with no weather inside the join's time range"),
    ]


def _air_quality_tables() -> list[LakeTable]:
    # Imported here: the air-quality schema module imports pyspark.
    from spark_apps.air_quality.schema import DAILY_SCHEMA, PARQUET_SCHEMA, PARTITION_COLUMNS

    def columns(schema) -> tuple[tuple[str, str], ...]:
        return tuple((field.name, field.dataType.simpleString()) for field in schema.fields)

    return [
        LakeTable("air_quality_hourly", "curated/air_quality_hourly", columns(PARQUET_SCHEMA), tuple(PARTITION_COLUMNS),
                  "CPCB hourly readings per station (air_quality_convert)"),
        # One file, not partitioned (convert.py writes it whole).
        LakeTable("air_quality_daily", "curated/air_quality_daily", columns(DAILY_SCHEMA), (),
                  "daily rows of Kaggle's station_day / city_day files (air_quality_convert)"),
    ]


def lake_tables() -> list[LakeTable]:
    return [*_energy_tables(), *_air_quality_tables()]


def session_conf(catalog: str, metastore_dir: str | None = None) -> dict[str, str]:
    """Spark settings of a session whose catalog is ``catalog`` (one of :data:`CATALOGS`).

    ``derby`` needs ``metastore_dir``, a local folder (the driver's): the Derby database
    (``metastore_db/``) and Hive's warehouse of managed tables (``warehouse/``, unused by the
    external lake tables but required by Hive) live there.
    """
    if catalog == "session":
        return {"spark.sql.catalogImplementation": "in-memory"}
    if catalog == "glue":
        return {"spark.sql.catalogImplementation": "hive",
                "spark.hadoop.hive.metastore.client.factory.class": GLUE_CLIENT_FACTORY}
    if catalog != "derby":
        raise ValueError(f"catalog must be one of {CATALOGS}, not {catalog!r}")
    if not metastore_dir:
        raise ValueError("the derby catalog needs a metastore folder")
    folder = Path(metastore_dir).resolve()
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
        # Hive creates its schema in a new Derby database itself, and does not insist on a
        # recorded schema version (a fresh folder has none).
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.sql.warehouse.dir": (folder / "warehouse").as_uri(),
    }


def prepare_session(spark: SparkSession, catalog: str, metastore_dir: str | None = None) -> None:
    """What must happen after the session starts and before its first catalog call."""
    if catalog == "derby" and metastore_dir:
        # Derby writes derby.log into the working directory (a task's temporary folder, the
        # repo) unless told otherwise; Hive's client (and Derby with it) starts lazily on the
        # first catalog call, so a JVM system property set now still applies.
        Path(metastore_dir).mkdir(parents=True, exist_ok=True)
        spark.sparkContext._jvm.java.lang.System.setProperty(
            "derby.stream.error.file", str(Path(metastore_dir).resolve() / "derby.log"))


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return f"`{name}`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table_sql(table: LakeTable, location: str, database: str = DATABASE) -> str:
    columns = ", ".join(f"{_quote(name)} {kind}" for name, kind in table.columns)
    sql = f"CREATE TABLE IF NOT EXISTS {table.qualified(database)} ({columns}) USING parquet"
    if table.partition_columns:
        sql += " PARTITIONED BY (" + ", ".join(_quote(c) for c in table.partition_columns) + ")"
    if table.comment:
        sql += f" COMMENT {_literal(table.comment)}"
    return sql + f" LOCATION {_literal(location)}"


def _location(spark: SparkSession, qualified: str) -> str | None:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {qualified}").collect()
    return next((row.data_type for row in rows if row.col_name == "Location"), None)


def _same_location(a: str | None, b: str) -> bool:
    # The catalog may store file:/x for file:///x.
    def norm(uri: str) -> str:
        return uri.rstrip("/").replace("file:///", "file:/")
    return a is not None and norm(a) == norm(b)


def register_tables(spark: SparkSession, lake_uri: str, tables: Iterable[LakeTable] | None = None,
                    database: str = DATABASE) -> dict[str, str]:
    """Create (or keep) ``database``'s external tables over the lake's datasets and recover their
    partitions; ``{table: location}`` of those registered.

    A dataset whose folder does not exist yet (the streaming join has not written) is left out,
    not created empty: its table appears with the first registration after its first files. A
    table found at another location (the lake URI changed) is re-created there; dropping an
    external table leaves its files.
    """
    from spark_apps.common import lake

    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(database)} COMMENT 'the data lake, by name'")
    registered = {}
    for table in tables if tables is not None else lake_tables():
        location = join(lake_uri, table.folder)
        qualified = table.qualified(database)
        if spark.catalog.tableExists(f"{database}.{table.name}"):
            current = _location(spark, qualified)
            if not _same_location(current, location):
                # Another lake's table: never answer this lake's queries with it.
                log.info("table %s was over %s, now %s", qualified, current, location)
                spark.sql(f"DROP TABLE {qualified}")
        if not lake.exists(spark, location):
            log.info("table %s: no data at %s yet, not registered", qualified, location)
            continue
        spark.sql(create_table_sql(table, location, database))
        if table.partition_columns:
            spark.sql(f"ALTER TABLE {qualified} RECOVER PARTITIONS")
        registered[table.name] = location
        log.info("table %s -> %s", qualified, location)
    return registered


def main(argv: list[str] | None = None) -> list:
    """Query the lake by name from a shell, in the catalog the analysis uses::

        spark-submit spark_apps/common/catalog.py --lake "$DP_LAKE_URI" --catalog derby \\
            --metastore-dir "$DP_HOME/metastore" \\
            "SELECT event_date, count(*) FROM lake.energy_joined GROUP BY 1 ORDER BY 1"

    Registers the tables first (new partitions included), prints the result. With the derby
    catalog, not while the analysis DAG runs (one application per Derby folder).
    """
    import argparse

    parser = argparse.ArgumentParser(description="Register the lake's tables and run one SQL query on them")
    parser.add_argument("sql")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--catalog", choices=CATALOGS, default="session")
    parser.add_argument("--metastore-dir")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    from spark_apps.common.session import get_spark

    spark = get_spark("lake_sql", session_conf(args.catalog, args.metastore_dir))
    prepare_session(spark, args.catalog, args.metastore_dir)
    register_tables(spark, args.lake)
    result = spark.sql(args.sql)
    rows = result.limit(args.limit).collect()
    print("\t".join(result.columns))
    for row in rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return rows


if __name__ == "__main__":
    main()
