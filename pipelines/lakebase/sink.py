"""A Spark table copied into PostgreSQL in one transaction, by binary COPY, without RDD APIs.

Every write holds a transaction-scoped advisory lock on its target (concurrent writers queue), and
either commits whole or leaves the target as it was:
- `replace`: TRUNCATE + COPY in the transaction. Readers wait for the commit and never see an empty
  or partial table; views over the target keep working (no drop-and-recreate, no rename swap).
- `append`: rows carry `_ldp_run_id`; the run's earlier rows are deleted first, so a retried run
  replaces its own rows instead of doubling them.
- `upsert`: rows COPY into a temporary table, then `INSERT ... ON CONFLICT (primary key) DO UPDATE`.
The target is created when missing (types mapped from Spark's), a new column is added with
`ALTER TABLE ... ADD COLUMN`, and a column whose type changed fails the write, naming it.
Rows stream from Spark partition by partition (`toLocalIterator`), so memory stays bounded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pyspark.sql import DataFrame, Row
from pyspark.sql import types as T

RUN_ID_COLUMN = "_ldp_run_id"


class SinkError(Exception):
    """A sink that cannot be written as configured (the message says which target and why)."""


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # as CREATE TABLE spells it
    convert: Callable[[Any], Any] | None = None  # Spark value -> what psycopg dumps as `pg_type`


def pg_columns(schema: T.StructType) -> list[Column]:
    return [Column(field.name, *_pg_type(field.dataType)) for field in schema.fields]


def _pg_type(kind: T.DataType) -> tuple[str, Callable[[Any], Any] | None]:
    simple = {T.ByteType: "smallint", T.ShortType: "smallint", T.IntegerType: "integer", T.LongType: "bigint",
              T.FloatType: "real", T.DoubleType: "double precision", T.StringType: "text",
              T.BooleanType: "boolean", T.DateType: "date", T.BinaryType: "bytea",
              T.TimestampNTZType: "timestamp without time zone"}
    for spark_type, pg in simple.items():
        if isinstance(kind, spark_type):
            return pg, (int if spark_type is T.ByteType else None)
    if isinstance(kind, T.DecimalType):
        return f"numeric({kind.precision},{kind.scale})", None
    if isinstance(kind, T.TimestampType):  # PySpark hands back naive local times
        return "timestamp with time zone", lambda value: value.astimezone()
    if isinstance(kind, (T.ArrayType, T.MapType, T.StructType)):
        return "jsonb", lambda value: Jsonb(_plain(value), dumps=lambda v: json.dumps(v, default=str))
    raise SinkError(f"no PostgreSQL type for Spark type {kind.simpleString()}")


def _plain(value: Any) -> Any:
    if isinstance(value, Row):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write(connect: Callable[[], psycopg.Connection], df: DataFrame, schema: str, table: str, mode: str,
          primary_key: tuple[str, ...] = (), refresh_views: tuple[str, ...] = (), run_id: str | None = None) -> int:
    """Write `df` to `schema.table` in one transaction; return the rows written."""
    columns = pg_columns(df.schema)
    if mode == "append":
        columns.append(Column(RUN_ID_COLUMN, "text"))
    target = sql.Identifier(schema, table)
    with connect() as conn:  # one transaction: committed on success, rolled back on any error
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{schema}.{table}"])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        _ensure_table(conn, schema, table, columns, primary_key)
        rows = _rows(df, columns, run_id if mode == "append" else None)
        if mode == "replace":
            conn.execute(sql.SQL("TRUNCATE {}").format(target))
            written = _copy(conn, target, columns, rows)
        elif mode == "append":
            conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(RUN_ID_COLUMN)),
                         [run_id])
            written = _copy(conn, target, columns, rows)
        else:
            written = _upsert(conn, target, columns, primary_key, rows)
        for view in refresh_views:
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(*view.split("."))))
    return written


def _ensure_table(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
                  primary_key: tuple[str, ...]) -> None:
    existing = {name: kind for name, kind in conn.execute(
        "SELECT column_name, format_type(a.atttypid, a.atttypmod) FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "AND a.attname = c.column_name WHERE c.table_schema = %s AND c.table_name = %s",
        [schema, table]).fetchall()}
    target = sql.Identifier(schema, table)
    if not existing:
        definitions = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns]
        if primary_key:
            definitions.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, primary_key))))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(definitions)))
        return
    changed = [f"{c.name} is {existing[c.name]}, the table now has {c.pg_type}" for c in columns
               if c.name in existing and not _same_type(existing[c.name], c.pg_type)]
    if changed:
        raise SinkError(f"incompatible change to {schema}.{table}: {'; '.join(changed)} "
                        "(the target was left as it was; migrate or drop it to change a type)")
    for column in columns:
        if column.name not in existing:
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                target, sql.Identifier(column.name), sql.SQL(column.pg_type)))


def _same_type(existing: str, wanted: str) -> bool:
    return existing.replace(" ", "") == wanted.replace(" ", "")


def _rows(df: DataFrame, columns: list[Column], run_id: str | None) -> Iterator[tuple[Any, ...]]:
    converters = [c.convert for c in columns if c.name != RUN_ID_COLUMN or run_id is None]
    extra = (run_id,) if run_id is not None else ()
    for row in df.toLocalIterator(prefetchPartitions=True):
        yield tuple(v if v is None or f is None else f(v) for v, f in zip(row, converters)) + extra


def _copy(conn: psycopg.Connection, target: sql.Composable, columns: list[Column],
          rows: Iterable[tuple[Any, ...]]) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        target, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns))
    written = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([_copy_type(c.pg_type) for c in columns])
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _copy_type(pg_type: str) -> str:
    """COPY's binary dumpers take a type name without modifiers: numeric(12,2) -> numeric."""
    return pg_type.split("(")[0]


def _upsert(conn: psycopg.Connection, target: sql.Composable, columns: list[Column], primary_key: tuple[str, ...],
            rows: Iterable[tuple[Any, ...]]) -> int:
    stage = sql.Identifier(f"_ldp_stage_{datetime.now():%H%M%S%f}")
    conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(stage, target))
    written = _copy(conn, stage, columns, rows)
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    updates = [sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c.name), sql.Identifier(c.name))
               for c in columns if c.name not in primary_key]
    action = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates)) if updates else sql.SQL("DO NOTHING")
    try:
        conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            target, names, names, stage, sql.SQL(", ").join(map(sql.Identifier, primary_key)), action))
    except psycopg.errors.InvalidColumnReference:
        raise SinkError(f"upsert needs a primary key or unique index on ({', '.join(primary_key)}) "
                        "in the target table") from None
    return written
