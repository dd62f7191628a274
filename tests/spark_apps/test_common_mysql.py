from datetime import date

import pytest

from spark_apps.common.mysql import ResultsDb, create_table_sql, replace_rows, upsert_rows


def _rows(db, table):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}` ORDER BY 1, 2")
            return cur.fetchall()
    finally:
        conn.close()


def test_url_parsing_hides_password():
    db = ResultsDb.from_url("mysql://app:s%40cret@db.example:3307/results")
    assert (db.host, db.port, db.user, db.password, db.database) == (
        "db.example", 3307, "app", "s@cret", "results")
    assert "s@cret" not in repr(db) and "s@cret" not in str(db)


def test_create_table_sql_has_primary_key(spark):
    df = spark.createDataFrame([("a", 1, 2.0)], "k string, n long, v double")
    sql = create_table_sql("t", df.schema, ["k"])
    assert "`k` VARCHAR(255) NOT NULL" in sql and "PRIMARY KEY (`k`)" in sql
    with pytest.raises(ValueError):
        create_table_sql("t; drop", df.schema, ["k"])


def test_replace_rows_is_idempotent_and_scoped(spark, results_db):
    schema = "day date, url string, hits long"
    day1 = spark.createDataFrame([(date(2024, 1, 1), "/a", 3), (date(2024, 1, 1), "/b", 1)], schema)
    day2 = spark.createDataFrame([(date(2024, 1, 2), "/a", 7)], schema)
    replace_rows(day1, results_db, "hits", ["day", "url"], "day = %s", [date(2024, 1, 1)])
    replace_rows(day2, results_db, "hits", ["day", "url"], "day = %s", [date(2024, 1, 2)])
    # rerun of day 1 with corrected input: day 1 is replaced, day 2 untouched, no duplicates
    day1_fixed = spark.createDataFrame([(date(2024, 1, 1), "/a", 4)], schema)
    for _ in range(2):
        assert replace_rows(day1_fixed, results_db, "hits", ["day", "url"], "day = %s", [date(2024, 1, 1)]) == 1
    assert _rows(results_db, "hits") == ((date(2024, 1, 1), "/a", 4), (date(2024, 1, 2), "/a", 7))


def test_upsert_rows_replays_without_duplicates(spark, results_db):
    df = spark.createDataFrame([("h1", "cpu", 1.5), ("h2", "cpu", float("nan"))], "host string, metric string, v double")
    upsert_rows(df, results_db, "ups", ["host", "metric"])
    upsert_rows(df, results_db, "ups", ["host", "metric"])
    assert _rows(results_db, "ups") == (("h1", "cpu", 1.5), ("h2", "cpu", None))
