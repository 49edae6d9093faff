"""The run inventory in PostgreSQL (`{meta_schema}`): what ran, how many rows, which checks failed,
where sinks wrote, which alerts fired — so that "when did this table last refresh, and did it
succeed?" has an answer. Each record is written in its own short transaction, so a failure late in
the run still leaves the earlier records.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

import psycopg
from psycopg import sql

from pipelines.core.results import RunResult, history_entry

DDL = """
CREATE SCHEMA IF NOT EXISTS {meta};
CREATE TABLE IF NOT EXISTS {meta}.runs (run_id text PRIMARY KEY, pipeline text, runner text, mode text,
  selection jsonb, started_at timestamptz, finished_at timestamptz, status text, version text, error text);
CREATE TABLE IF NOT EXISTS {meta}.table_runs (run_id text, table_name text, status text, rows_written bigint,
  rows_quarantined bigint, rows_dropped bigint, seconds double precision, error text,
  PRIMARY KEY (run_id, table_name));
ALTER TABLE {meta}.table_runs ADD COLUMN IF NOT EXISTS rules_version integer;
CREATE TABLE IF NOT EXISTS {meta}.check_results (run_id text, table_name text, check_name text, criticality text,
  failed bigint, PRIMARY KEY (run_id, table_name, check_name));
ALTER TABLE {meta}.check_results ADD COLUMN IF NOT EXISTS passed bigint;
ALTER TABLE {meta}.table_runs ADD COLUMN IF NOT EXISTS rows_total bigint;
ALTER TABLE {meta}.table_runs ADD COLUMN IF NOT EXISTS changes jsonb;
ALTER TABLE {meta}.table_runs ADD COLUMN IF NOT EXISTS new_columns jsonb;
CREATE TABLE IF NOT EXISTS {meta}.sink_runs (run_id text, table_name text, target text, mode text, rows bigint,
  status text, error text, PRIMARY KEY (run_id, table_name, target));
CREATE TABLE IF NOT EXISTS {meta}.sink_state (target text PRIMARY KEY, last_run_id text, last_run_at timestamptz,
  last_run_status text, last_success_at timestamptz, rows bigint);
CREATE TABLE IF NOT EXISTS {meta}.alerts (run_id text, table_name text, metric text, column_name text,
  value double precision, op text, threshold double precision, drift_type text, window_start text);
"""


def inventory_columns() -> dict[str, tuple[str, ...]]:
    """{table: its columns} of the inventory as `DDL` creates it (CREATE TABLE plus each ALTER ... ADD
    COLUMN), read by a SQL parser: what dashboards over the inventory may name."""
    import sqlglot
    from sqlglot import exp

    tables: dict[str, list[str]] = {}
    for statement in sqlglot.parse(DDL.format(meta="meta"), read="postgres"):
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            schema = statement.this
            tables[schema.this.name] = [column.name for column in schema.expressions
                                        if isinstance(column, exp.ColumnDef)]
        elif isinstance(statement, exp.Alter):
            tables[statement.this.name] += [action.name for action in statement.actions
                                            if isinstance(action, exp.ColumnDef)]
    return {name: tuple(columns) for name, columns in tables.items()}


def record_run(connect: Callable[[], psycopg.Connection], meta: str, run: RunResult, pipeline: str, mode: str,
               selection: list[str], version: str, rules_versions: dict[str, int] | None = None) -> None:
    """Write one finished run (a rerun of the same run id replaces its records); `rules_versions` are the
    published rule versions the tables enforced (`table_runs.rules_version`)."""
    schema = sql.Identifier(meta)
    finished = _at(run.finished_at or datetime.now(timezone.utc).timestamp())
    with connect() as conn:
        conn.execute(sql.SQL(DDL).format(meta=schema))
    with connect() as conn:
        conn.execute(sql.SQL("DELETE FROM {}.runs WHERE run_id = %s").format(schema), [run.run_id])
        conn.execute(sql.SQL("INSERT INTO {}.runs VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)").format(schema), [
            run.run_id, pipeline, run.runner, mode, json.dumps(selection), _at(run.started_at), finished,
            run.status, version, "; ".join(run.errors) or None])
    for table in run.tables:
        with connect() as conn:
            for name in ("table_runs", "check_results", "sink_runs", "alerts"):
                conn.execute(sql.SQL("DELETE FROM {}.{} WHERE run_id = %s AND table_name = %s").format(
                    schema, sql.Identifier(name)), [run.run_id, table.name])
            conn.execute(sql.SQL(
                "INSERT INTO {}.table_runs (run_id, table_name, status, rows_written, rows_quarantined, rows_dropped, "
                "seconds, error, rules_version, rows_total, changes, new_columns) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)").format(schema), [
                run.run_id, table.name, table.status.value, table.rows_written, table.rows_quarantined,
                table.rows_dropped, table.seconds, table.error, (rules_versions or {}).get(table.name),
                table.rows_total, None if table.changes is None else json.dumps(table.changes),
                json.dumps(table.new_columns) if table.new_columns else None])
            for check in table.checks or []:
                conn.execute(sql.SQL("INSERT INTO {}.check_results (run_id, table_name, check_name, criticality, "
                                     "failed, passed) VALUES (%s, %s, %s, %s, %s, %s)").format(schema), [
                    run.run_id, table.name, check.name, check.criticality.value, check.failed, check.passed])
            for alert in (table.monitor or {}).get("alerts", []):
                conn.execute(sql.SQL("INSERT INTO {}.alerts VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)").format(
                    schema), [run.run_id, table.name, alert["metric"], alert["column"], alert["value"], alert["op"],
                              alert["threshold"], alert.get("drift_type"), alert.get("window_start")])
            for sink in table.sinks or []:
                _record_sink(conn, schema, run.run_id, table.name, sink, finished)


def record_sinks(connect: Callable[[], psycopg.Connection], meta: str, run: RunResult) -> None:
    """Only the sink writes of `run` (`sinks publish` after a pipeline update): the run's own record,
    written by the update's task under the same run id, is left as it is."""
    schema = sql.Identifier(meta)
    at = _at(run.finished_at or datetime.now(timezone.utc).timestamp())
    with connect() as conn:
        conn.execute(sql.SQL(DDL).format(meta=schema))
    for table in run.tables:
        with connect() as conn:
            conn.execute(sql.SQL("DELETE FROM {}.sink_runs WHERE run_id = %s AND table_name = %s").format(schema),
                         [run.run_id, table.name])
            for sink in table.sinks or []:
                _record_sink(conn, schema, run.run_id, table.name, sink, at)


def _record_sink(conn: psycopg.Connection, schema: sql.Identifier, run_id: str, table: str, sink: dict[str, Any],
                 at: datetime) -> None:
    conn.execute(sql.SQL("INSERT INTO {}.sink_runs VALUES (%s, %s, %s, %s, %s, %s, %s)").format(schema), [
        run_id, table, sink["target"], sink["mode"], sink["rows"], sink["status"], sink["error"]])
    succeeded = sink["status"] == "success"
    conn.execute(sql.SQL(
        "INSERT INTO {}.sink_state AS s VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (target) DO UPDATE SET "
        "last_run_id = EXCLUDED.last_run_id, last_run_at = EXCLUDED.last_run_at, "
        "last_run_status = EXCLUDED.last_run_status, "
        "last_success_at = COALESCE(EXCLUDED.last_success_at, s.last_success_at), "
        "rows = COALESCE(EXCLUDED.rows, s.rows)").format(schema), [
        sink["target"], run_id, at, sink["status"], at if succeeded else None, sink["rows"] if succeeded else None])


def recent_runs(connect: Callable[[], psycopg.Connection], meta: str, limit: int) -> list[dict[str, Any]]:
    with connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(sql.SQL(
            "SELECT run_id, pipeline, runner, mode, status, started_at, finished_at, "
            "(SELECT count(*) FROM {meta}.table_runs t WHERE t.run_id = r.run_id) AS tables "
            "FROM {meta}.runs r ORDER BY started_at DESC LIMIT %s").format(meta=sql.Identifier(meta)),
            [limit]).fetchall()


def one_run(connect: Callable[[], psycopg.Connection], meta: str, run_id: str) -> dict[str, Any] | None:
    schema = sql.Identifier(meta)
    with connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        run = cursor.execute(sql.SQL("SELECT * FROM {}.runs WHERE run_id = %s").format(schema), [run_id]).fetchone()
        if run is None:
            return None
        for name in ("table_runs", "check_results", "sink_runs", "alerts"):
            run[name] = cursor.execute(sql.SQL("SELECT * FROM {}.{} WHERE run_id = %s ORDER BY table_name").format(
                schema, sql.Identifier(name)), [run_id]).fetchall()
        return run


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def table_history(connect: Callable[[], psycopg.Connection], meta: str, tables: list[str],
                  limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Each table's newest `limit` recorded runs, oldest first, with each check's failure rate (the
    run report's trend lines)."""
    with connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        rows = cursor.execute(sql.SQL(
            "SELECT table_name AS name, run_id, started_at, status, rows_written, rows_quarantined, rows_dropped, "
            "seconds FROM ("
            "SELECT t.*, r.started_at, row_number() OVER (PARTITION BY t.table_name ORDER BY r.started_at DESC) AS n "
            "FROM {meta}.table_runs t JOIN {meta}.runs r USING (run_id) WHERE t.table_name = ANY(%s)) ranked "
            "WHERE n <= %s ORDER BY started_at").format(meta=sql.Identifier(meta)), [tables, limit]).fetchall()
        checks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for check in cursor.execute(sql.SQL(
                "SELECT run_id, table_name, check_name AS name, failed, passed FROM {}.check_results "
                "WHERE table_name = ANY(%s) AND run_id = ANY(%s)").format(sql.Identifier(meta)),
                [tables, list({row["run_id"] for row in rows})]).fetchall():
            checks.setdefault((check.pop("run_id"), check.pop("table_name")), []).append(check)
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for row in rows:
        row["checks"] = checks.get((row["run_id"], row["name"]), [])
        found[row["name"]].append(history_entry(row["run_id"], row["started_at"].timestamp(), row))
    return found
