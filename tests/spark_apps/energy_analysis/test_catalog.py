"""The lake's datasets by name (spark_apps/common/catalog.py): registered over their folders,
new partitions recovered, a table that moved re-created, and (with Spark's Hive support and an
embedded Derby metastore) still there for the next application, in another JVM."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from spark_apps.air_quality.schema import PARQUET_SCHEMA
from spark_apps.common import catalog
from spark_apps.streaming.energy_weather import layout
from tests.spark_apps.energy_analysis.helpers import generated, write_joined

ROOT = Path(__file__).resolve().parents[3]


def _air_quality(spark, lake_uri):
    from datetime import datetime

    row = {f.name: None for f in PARQUET_SCHEMA.fields}
    row.update(from_ts=datetime(2020, 4, 1, 10), source_file="a.csv", station="S1", month="2020-04", pm25=40.0)
    spark.createDataFrame([tuple(row[f.name] for f in PARQUET_SCHEMA.fields)], PARQUET_SCHEMA) \
        .write.partitionBy("month").parquet(f"{lake_uri}/curated/air_quality_hourly")


def _count(spark, table):
    return spark.sql(f"SELECT count(*) FROM lake.{table}").first()[0]


def test_tables_by_name_follow_the_lake(spark, tmp_path):
    lake_uri = (tmp_path / "lake").as_uri()
    write_joined(spark, lake_uri, generated(start=date(2026, 11, 2), days=2, households=2))
    _air_quality(spark, lake_uri)

    registered = catalog.register_tables(spark, lake_uri)
    # energy/unmatched and the daily dataset have no folder yet: left out, not created empty.
    assert registered == {"energy_joined": f"{lake_uri}/energy/joined",
                          "air_quality_hourly": f"{lake_uri}/curated/air_quality_hourly"}
    assert not spark.catalog.tableExists("lake.energy_unmatched")
    assert _count(spark, "energy_joined") == 2 * 48
    assert [r[0] for r in spark.sql("SHOW PARTITIONS lake.energy_joined").collect()] == [
        "event_date=2026-11-02", "event_date=2026-11-03", "event_date=2026-11-04"]
    assert spark.sql("SELECT station, pm25 FROM lake.air_quality_hourly").collect()[0].asDict() == {
        "station": "S1", "pm25": 40.0}
    assert [f.name for f in spark.table("lake.energy_joined").schema] == [name for name, _ in layout.JOINED_COLUMNS]

    # A day the join writes later is in the table after the next registration (its partitions
    # live in the catalog), and a second registration changes nothing else.
    write_joined(spark, lake_uri, generated(start=date(2026, 11, 5), days=1, households=2))
    assert _count(spark, "energy_joined") == 2 * 48
    catalog.register_tables(spark, lake_uri)
    assert _count(spark, "energy_joined") == 3 * 48

    # Another lake: the table follows it (dropping an external table leaves the old files).
    other = (tmp_path / "other").as_uri()
    write_joined(spark, other, generated(start=date(2026, 11, 2), days=1, households=2))
    assert catalog.register_tables(spark, other) == {"energy_joined": f"{other}/energy/joined"}
    assert _count(spark, "energy_joined") == 48
    assert not spark.catalog.tableExists("lake.air_quality_hourly")
    assert (tmp_path / "lake" / "energy" / "joined" / "event_date=2026-11-05").is_dir()


def test_create_table_statement():
    table = catalog.LakeTable("t", "x/y", (("a", "string"), ("d", "date")), ("d",), "it's")
    assert catalog.create_table_sql(table, "s3a://b/lake/x/y") == (
        "CREATE TABLE IF NOT EXISTS `lake`.`t` (`a` string, `d` date) USING parquet PARTITIONED BY (`d`)"
        " COMMENT 'it\\'s' LOCATION 's3a://b/lake/x/y'")


def test_session_conf():
    assert catalog.session_conf("glue")["spark.hadoop.hive.metastore.client.factory.class"] == catalog.GLUE_CLIENT_FACTORY
    assert catalog.session_conf("session") == {"spark.sql.catalogImplementation": "in-memory"}
    derby = catalog.session_conf("derby", "/srv/dp/metastore")
    assert derby["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        "jdbc:derby:;databaseName=/srv/dp/metastore/metastore_db;create=true")
    for bad in (("derby", None), ("hive", "/x")):
        try:
            catalog.session_conf(*bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


APPLICATION = r"""
import json, sys
from pyspark.sql import SparkSession
from spark_apps.common import catalog
from spark_apps.streaming.energy_weather import layout
metastore, lake_uri, register = sys.argv[1], sys.argv[2], sys.argv[3] == "register"
builder = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
           .config("spark.sql.shuffle.partitions", "1").config("spark.sql.session.timeZone", "UTC"))
for key, value in catalog.session_conf("derby", metastore).items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
catalog.prepare_session(spark, "derby", metastore)
registered = catalog.register_tables(spark, lake_uri) if register else None
print(json.dumps({
    "catalog": spark.conf.get("spark.sql.catalogImplementation"),
    "registered": registered,
    "tables": sorted(t.name for t in spark.catalog.listTables("lake")),
    "rows": spark.sql("SELECT count(*) FROM lake.energy_joined WHERE event_date = DATE'2026-11-03'").first()[0],
}))
spark.stop()
"""


def _application(metastore: Path, lake_uri: str, mode: str, cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", APPLICATION, str(metastore), lake_uri, mode], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_hive_support_with_derby_keeps_the_tables_for_the_next_application(spark, tmp_path):
    lake_uri = (tmp_path / "lake").as_uri()
    write_joined(spark, lake_uri, generated(start=date(2026, 11, 2), days=2, households=2))
    metastore, cwd = tmp_path / "home" / "metastore", tmp_path / "cwd"
    cwd.mkdir()
    first = _application(metastore, lake_uri, "register", cwd)
    assert first["catalog"] == "hive"
    assert first["registered"] == {"energy_joined": f"{lake_uri}/energy/joined"}
    assert first["rows"] == 2 * 24
    # A new JVM that registers nothing finds the table by name, with its partitions.
    second = _application(metastore, lake_uri, "query", cwd)
    assert (second["catalog"], second["tables"], second["rows"]) == ("hive", ["energy_joined"], 2 * 24)
    assert (metastore / "metastore_db").is_dir() and (metastore / "derby.log").is_file()
    assert list(cwd.iterdir()) == []  # no derby.log, metastore_db or spark-warehouse left in the working folder

    # The shell entry point: registers (a new day appears), then queries by name.
    write_joined(spark, lake_uri, generated(start=date(2026, 11, 5), days=1, households=2))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "spark_apps.common.catalog", "--lake", lake_uri, "--catalog", "derby",
                          "--metastore-dir", str(metastore),
                          "SELECT count(DISTINCT event_date) AS days FROM lake.energy_joined"],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.strip().splitlines()[-2:] == ["days", "5"]
