"""Idempotent writes of Spark results into MySQL / MariaDB with PyMySQL.

Why not ``df.write.jdbc``: Spark's JDBC writer can only append or overwrite a whole
table, and it needs a JDBC driver jar on the classpath. Our results must be
*replaced by scope* (a log date, a set of stations) or *upserted* (streaming
micro-batches) so that a rerun never duplicates rows. PyMySQL is pure Python, so
it ships to executors and to EMR with the rest of the bundle.

Credentials never appear in code, arguments or logs: they come from
``DP_RESULTS_DB_URL`` (embedded stack / docker-compose, set by the platform) or
from an AWS Secrets Manager secret named by ``DP_RESULTS_DB_SECRET_ID`` (EMR,
RDS-style JSON secret).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import parse_qs, unquote, urlparse

from pyspark.sql import DataFrame
from pyspark.sql import types as T

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BATCH_ROWS = 2000


@dataclass(frozen=True)
class ResultsDb:
    host: str
    port: int
    user: str
    password: str
    database: str
    # Set for a local admin login through the server's socket (``?unix_socket=/path``).
    unix_socket: str | None = None

    def __repr__(self) -> str:  # never print the password
        return f"ResultsDb({self.user}@{self.host}:{self.port}/{self.database})"

    __str__ = __repr__

    @classmethod
    def from_url(cls, url: str) -> "ResultsDb":
        parsed = urlparse(url)
        if parsed.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ValueError("results DB URL must look like mysql://user:password@host:3306/database")
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 3306,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            database=parsed.path.lstrip("/"),
            unix_socket=(parse_qs(parsed.query).get("unix_socket") or [None])[0],
        )

    @classmethod
    def from_env(cls) -> "ResultsDb":
        url = os.environ.get("DP_RESULTS_DB_URL")
        if url:
            return cls.from_url(url)
        secret_id = os.environ.get("DP_RESULTS_DB_SECRET_ID")
        if secret_id:
            import boto3  # only needed on AWS

            secret = json.loads(
                boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
            )
            return cls(
                host=secret["host"],
                port=int(secret.get("port", 3306)),
                user=secret["username"],
                password=secret["password"],
                database=secret.get("dbname") or secret["database"],
            )
        raise RuntimeError(
            "No results database configured: set DP_RESULTS_DB_URL (mysql://user:pw@host:port/db) "
            "or DP_RESULTS_DB_SECRET_ID (AWS Secrets Manager secret id)."
        )

    def connect(self, autocommit: bool = False):
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            autocommit=autocommit,
            charset="utf8mb4",
            connect_timeout=10,
            unix_socket=self.unix_socket,
        )

    def query(self, sql: str, params: Sequence = ()) -> tuple[tuple, ...]:
        """The rows of one statement, on a connection of its own (for checks and small reads)."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return f"`{name}`"


def mysql_type(dtype: T.DataType) -> str:
    """MySQL column type for a Spark type (results tables only hold simple types)."""
    if isinstance(dtype, T.StringType):
        return "VARCHAR(255)"
    if isinstance(dtype, (T.IntegerType, T.ShortType, T.ByteType)):
        return "INT"
    if isinstance(dtype, T.LongType):
        return "BIGINT"
    if isinstance(dtype, (T.DoubleType, T.FloatType)):
        return "DOUBLE"
    if isinstance(dtype, T.DecimalType):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if isinstance(dtype, T.BooleanType):
        return "BOOLEAN"
    if isinstance(dtype, T.DateType):
        return "DATE"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return "DATETIME"
    raise TypeError(f"no MySQL mapping for Spark type {dtype.simpleString()}")


def create_table_sql(table: str, schema: T.StructType, keys: Sequence[str]) -> str:
    cols = []
    for field in schema.fields:
        null = "NOT NULL" if field.name in keys else "NULL"
        cols.append(f"{_ident(field.name)} {mysql_type(field.dataType)} {null}")
    if keys:
        cols.append("PRIMARY KEY (" + ", ".join(_ident(k) for k in keys) + ")")
    return f"CREATE TABLE IF NOT EXISTS {_ident(table)} (\n  " + ",\n  ".join(cols) + "\n)"


def ensure_table(db: ResultsDb, table: str, schema: T.StructType, keys: Sequence[str]) -> None:
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(create_table_sql(table, schema, keys))
    finally:
        conn.close()


def _to_db(value):
    # Spark Rows give datetime/date/Decimal/float; PyMySQL handles those. NaN is not
    # storable in MySQL DOUBLE, so it becomes NULL (the value is unknown).
    if isinstance(value, float) and value != value:
        return None
    return value


def _insert_rows(db: ResultsDb, sql: str, rows: Iterable) -> int:
    conn = db.connect()
    written = 0
    try:
        with conn.cursor() as cur:
            batch = []
            for row in rows:
                batch.append(tuple(_to_db(v) for v in row))
                if len(batch) >= BATCH_ROWS:
                    cur.executemany(sql, batch)
                    written += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                written += len(batch)
        conn.commit()
    finally:
        conn.close()
    return written


def _insert_sql(table: str, columns: Sequence[str], upsert_keys: Sequence[str] | None = None) -> str:
    cols = ", ".join(_ident(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {_ident(table)} ({cols}) VALUES ({marks})"
    if upsert_keys is not None:
        updates = [c for c in columns if c not in upsert_keys] or list(columns[:1])
        sql += " ON DUPLICATE KEY UPDATE " + ", ".join(
            f"{_ident(c)} = VALUES({_ident(c)})" for c in updates
        )
    return sql


def replace_rows(
    df: DataFrame,
    db: ResultsDb,
    table: str,
    keys: Sequence[str],
    scope_where: str | None = None,
    scope_params: Sequence = (),
) -> int:
    """Make ``table`` hold exactly ``df``'s rows within a scope, atomically.

    Executors write into a private staging table; then one transaction deletes the
    target rows in scope (``scope_where`` with ``%s`` parameters; ``None`` means the
    whole table) and moves the staged rows in. A rerun of the same input therefore
    leaves the same rows, and a failed run leaves the previous result untouched.
    Returns the number of rows written.
    """
    ensure_table(db, table, df.schema, keys)
    columns = df.columns
    stage = f"{table}__stage_{uuid.uuid4().hex[:12]}"
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {_ident(stage)} LIKE {_ident(table)}")
        insert = _insert_sql(stage, columns)
        db_bc = db  # captured by the closure, pickled to executors (never logged)

        def write_partition(rows):
            yield _insert_rows(db_bc, insert, rows)

        written = sum(df.rdd.mapPartitions(write_partition).collect())
        cols = ", ".join(_ident(c) for c in columns)
        conn.autocommit(False)
        with conn.cursor() as cur:
            if scope_where:
                cur.execute(f"DELETE FROM {_ident(table)} WHERE {scope_where}", tuple(scope_params))
            else:
                cur.execute(f"DELETE FROM {_ident(table)}")
            cur.execute(f"INSERT INTO {_ident(table)} ({cols}) SELECT {cols} FROM {_ident(stage)}")
        conn.commit()
        return written
    except Exception:
        conn.rollback()
        raise
    finally:
        try:
            conn.autocommit(True)
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {_ident(stage)}")
        finally:
            conn.close()


def upsert_rows(df: DataFrame, db: ResultsDb, table: str, keys: Sequence[str]) -> int:
    """INSERT ... ON DUPLICATE KEY UPDATE every row of ``df`` (idempotent per key).

    Used by streaming foreachBatch sinks: replaying a micro-batch after a crash
    rewrites the same keys with the same values.
    """
    ensure_table(db, table, df.schema, keys)
    sql = _insert_sql(table, df.columns, upsert_keys=keys)

    def write_partition(rows):
        yield _insert_rows(db, sql, rows)

    return sum(df.rdd.mapPartitions(write_partition).collect())


def upsert_values(db: ResultsDb, table: str, schema: T.StructType, keys: Sequence[str], rows: Iterable[Sequence]) -> int:
    """:func:`upsert_rows` for rows already on the driver (a micro-batch's few aggregates), in
    ``schema`` order: the same statement, one connection, no Spark job."""
    ensure_table(db, table, schema, keys)
    return _insert_rows(db, _insert_sql(table, schema.fieldNames(), upsert_keys=keys), rows)
