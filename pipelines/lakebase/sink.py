"""A Spark table copied into PostgreSQL in one transaction, by COPY, without RDD APIs.

Every write holds a transaction-scoped advisory lock on its target (concurrent writers queue), and
either commits whole or leaves the target as it was:
- `replace`: TRUNCATE + COPY in the transaction. Readers wait for the commit and never see an empty
  or partial table; views over the target keep working (no drop-and-recreate, no rename swap).
- `append`: rows carry `_ldp_run_id`; the run's earlier rows are deleted first, so a retried run
  replaces its own rows instead of doubling them.
- `upsert`: rows COPY into a temporary table, then `INSERT ... ON CONFLICT (primary key) DO UPDATE`.
The target is created when missing (types mapped from Spark's), a new column is added with
`ALTER TABLE ... ADD COLUMN`, and a column whose type changed fails the write, naming it.
Data moves as chunks encoded where the data is (`mapInArrow`: each Arrow batch to PostgreSQL's binary
COPY format by `pgbinary`, vectorized, in parallel on the executors) and streamed to the driver
partition by partition (`toLocalIterator`) into `COPY ... FROM STDIN (FORMAT binary)`: no RDD API,
bounded memory, the driver only forwards bytes and the server parses no text. Nested values travel as
JSON. A table with a decimal column travels as CSV (Arrow's C++ writer; binary as bytea hex) instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

import psycopg
from psycopg import sql
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.catalog.sinks import SinkWriter, register_writer
from pipelines.core.lakebase import LakebaseSink, MaterializedView
from pipelines.core.sinks import RUN_ID_COLUMN

from . import pgbinary



class SinkError(Exception):
    """A sink that cannot be written as configured (the message says which target and why)."""


Encode = Callable[[SparkColumn], SparkColumn]


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # as CREATE TABLE spells it
    wire: str | None = "text"  # its binary COPY encoding (`pgbinary.KINDS`); None: the table travels as CSV
    spark: Encode | None = None  # computed in Spark before it travels (JSON text of nested values)
    csv: Encode | None = None  # how it is spelled in CSV, if not as Spark writes it


def pg_columns(schema: T.StructType) -> list[Column]:
    return [_column(field.name, field.dataType) for field in schema.fields]


def _column(name: str, kind: T.DataType) -> Column:
    simple = {T.ByteType: ("smallint", "int2"), T.ShortType: ("smallint", "int2"), T.IntegerType: ("integer", "int4"),
              T.LongType: ("bigint", "int8"), T.FloatType: ("real", "float4"),
              T.DoubleType: ("double precision", "float8"), T.StringType: ("text", "text"),
              T.BooleanType: ("boolean", "bool"), T.DateType: ("date", "date"),
              T.TimestampType: ("timestamp with time zone", "timestamp"),
              T.TimestampNTZType: ("timestamp without time zone", "timestamp")}
    for spark_type, (pg, wire) in simple.items():
        if isinstance(kind, spark_type):
            return Column(name, pg, wire)
    if isinstance(kind, T.DecimalType):
        return Column(name, f"numeric({kind.precision},{kind.scale})", None)
    if isinstance(kind, T.BinaryType):
        return Column(name, "bytea", "bytea", csv=lambda value: F.concat(F.lit("\\x"), F.lower(F.hex(value))))
    if isinstance(kind, (T.ArrayType, T.MapType, T.StructType)):
        return Column(name, "jsonb", "jsonb", spark=F.to_json)
    raise SinkError(f"no PostgreSQL type for Spark type {kind.simpleString()}")


def write(connect: Callable[[], psycopg.Connection], df: DataFrame, schema: str, table: str, mode: str,
          primary_key: tuple[str, ...] = (), refresh_views: tuple[str, ...] = (), run_id: str | None = None,
          views: tuple[MaterializedView, ...] = ()) -> int:
    """Write `df` to `schema.table` in one transaction; return the rows written. `views` are created over
    the target when missing, then they and `refresh_views` are refreshed, in the same transaction."""
    columns = pg_columns(df.schema)
    if mode == "append":
        columns.append(Column(RUN_ID_COLUMN, "text", "text"))
    target = sql.Identifier(schema, table)
    _ensure_schema(connect, schema)
    with connect() as conn:  # one transaction: committed on success, rolled back on any error
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{schema}.{table}"])
        _ensure_table(conn, schema, table, columns, primary_key)
        rows = _chunks(df, columns, run_id if mode == "append" else None)
        if mode == "replace":
            conn.execute(sql.SQL("TRUNCATE {}").format(target))
            written = _copy(conn, target, columns, rows)
        elif mode == "append":
            conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(RUN_ID_COLUMN)),
                         [run_id])
            written = _copy(conn, target, columns, rows)
        else:
            written = _upsert(conn, target, columns, primary_key, rows)
        created = set()
        for view in views:
            if conn.execute("SELECT to_regclass(%s) IS NULL", [_quoted(view.name)]).fetchone()[0]:
                try:
                    conn.execute(sql.SQL("CREATE MATERIALIZED VIEW {} AS {}").format(  # type: ignore[arg-type]
                        sql.Identifier(*view.name.split(".")), sql.SQL(view.query)))
                except psycopg.errors.Error as exc:
                    raise SinkError(f"cannot create materialized view {view.name}: {str(exc).strip()}") from None
                created.add(view.name)
        for name in [*refresh_views, *(v.name for v in views if v.name not in created)]:
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(*name.split("."))))
    return written


def _ensure_schema(connect: Callable[[], psycopg.Connection], schema: str) -> None:
    """Create the target's schema, in a short transaction of its own. Two sinks creating it at once both
    insert it (`IF NOT EXISTS` does not guard concurrent transactions, and a lock does not help: the
    waiting one's catalog cache still says it is missing), so the loser's unique violation means done."""
    try:
        with connect() as conn:
            if conn.execute("SELECT to_regnamespace(%s) IS NULL", [_quoted(schema)]).fetchone()[0]:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.errors.UniqueViolation:
        pass  # a concurrent sink committed the same schema first


def _quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


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


Chunks = tuple[str, Iterator[tuple[bytes, int]]]  # the COPY format, then (bytes, rows) chunks


def _chunks(df: DataFrame, columns: list[Column], run_id: str | None) -> Chunks:
    """The rows as chunks of COPY data, one per Arrow batch, encoded by the Python workers: binary when
    every column has a binary encoding (the server stores it without parsing), else CSV."""
    binary = all(c.wire for c in columns)
    values = []
    for c in columns:
        if c.name == RUN_ID_COLUMN:
            continue
        value = F.col(f"`{c.name}`")
        value = c.spark(value) if c.spark else value
        values.append((c.csv(value) if c.csv and not binary else value).alias(c.name))
    if run_id is not None:
        values.append(F.lit(run_id).alias(RUN_ID_COLUMN))
    encode = pgbinary.encoder([str(c.wire) for c in columns]) if binary else _to_csv
    encoded = df.select(*values).mapInArrow(encode, "chunk binary, rows bigint")
    return ("binary" if binary else "csv",
            ((row["chunk"], row["rows"]) for row in encoded.toLocalIterator(prefetchPartitions=True)))


def _to_csv(batches: Iterable[Any]) -> Iterator[Any]:
    """Runs in the Python workers: each Arrow batch to CSV (nulls unquoted and empty, strings quoted)."""
    import pyarrow as pa
    import pyarrow.csv as csv

    options = csv.WriteOptions(include_header=False, quoting_style="needed")
    schema = pa.schema([("chunk", pa.binary()), ("rows", pa.int64())])
    for batch in batches:
        if batch.num_rows:
            sink = pa.BufferOutputStream()
            csv.write_csv(pa.Table.from_batches([batch]), sink, options)
            yield pa.RecordBatch.from_pydict({"chunk": [sink.getvalue().to_pybytes()], "rows": [batch.num_rows]},
                                             schema=schema)


def _copy(conn: psycopg.Connection, target: sql.Composable, columns: list[Column], chunks: Chunks) -> int:
    kind, data = chunks
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        target, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns), sql.SQL(kind))
    written = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        if kind == "binary":
            copy.write(pgbinary.SIGNATURE)
        for chunk, rows in data:
            copy.write(chunk)
            written += rows
        if kind == "binary":
            copy.write(pgbinary.TRAILER)
    return written


def _upsert(conn: psycopg.Connection, target: sql.Composable, columns: list[Column], primary_key: tuple[str, ...],
            rows: Chunks) -> int:
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


class LakebaseWriter(SinkWriter[LakebaseSink]):
    """`type: lakebase` sinks: each a `write` into the run's Lakebase, tagged with the run's id."""

    def write(self, df: DataFrame, sink: LakebaseSink, table: str) -> int:
        schema, name = sink.location(table)
        return write(self.run.lakebase.connect, df, schema, name, sink.mode, sink.primary_key,
                     sink.refresh_views, self.run.run_id, sink.views)

    def close(self) -> None:
        self.run.lakebase.close()  # stops an embedded server this run started (after the inventory wrote)


register_writer("lakebase", LakebaseWriter)
