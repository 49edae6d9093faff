"""The rule store: published versions of each table's DQX checks in `{meta_schema}.dq_rules_events`
(the DQ rule manager's table), at most one active per table, so rules can be rolled forward or back
without a redeploy. Every change is one transaction under an advisory lock on the table's rules.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pipelines.core.rules import Checks, RuleVersion, fingerprint

TABLE = "dq_rules_events"
DDL = """
CREATE SCHEMA IF NOT EXISTS {meta};
CREATE TABLE IF NOT EXISTS {meta}.dq_rules_events (
  id UUID PRIMARY KEY, table_name VARCHAR(500) NOT NULL, version INTEGER NOT NULL, rules JSONB NOT NULL,
  user_prompt TEXT, ai_summary JSONB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, created_by VARCHAR(255),
  is_active BOOLEAN DEFAULT TRUE, metadata JSONB, UNIQUE(table_name, version));
CREATE UNIQUE INDEX IF NOT EXISTS dq_rules_events_one_active ON {meta}.dq_rules_events (table_name) WHERE is_active;
"""
Connect = Callable[[], psycopg.Connection]


class RulesError(Exception):
    """A rules request that cannot be met (no such version...); the message says why."""


def publish(connect: Connect, meta: str, table: str, rules: Checks, metadata: dict[str, Any] | None = None,
            user_prompt: str | None = None) -> tuple[RuleVersion, bool]:
    """Store `rules` as the table's new active version unless the active one has the same fingerprint.
    Returns the active version and whether it is new."""
    digest = fingerprint(rules)
    with connect() as conn:
        _lock(conn, meta, table)
        active = _versions(conn, meta, table, "AND is_active")
        if active and active[0].fingerprint == digest:
            return active[0], False
        number = conn.execute(sql.SQL("SELECT coalesce(max(version), 0) + 1 FROM {}.{} WHERE table_name = %s").format(
            sql.Identifier(meta), sql.Identifier(TABLE)), [table]).fetchone()[0]
        _deactivate(conn, meta, table)
        conn.execute(sql.SQL(
            "INSERT INTO {}.{} (id, table_name, version, rules, user_prompt, created_by, is_active, metadata) "
            "VALUES (%s, %s, %s, %s, %s, current_user, TRUE, %s)").format(sql.Identifier(meta), sql.Identifier(TABLE)),
            [uuid.uuid4(), table, number, Jsonb(rules), user_prompt,
             Jsonb({**(metadata or {}), "fingerprint": digest, "checks": len(rules)})])
        return _versions(conn, meta, table, "AND version = %s", [number])[0], True


def history(connect: Connect, meta: str, table: str) -> list[RuleVersion]:
    """Every version of a table's rules, newest first."""
    with connect() as conn:
        return _versions(conn, meta, table) if _exists(conn, meta) else []


def version(connect: Connect, meta: str, table: str, number: int | None = None) -> RuleVersion | None:
    """Version `number`, or the active one."""
    with connect() as conn:
        if not _exists(conn, meta):
            return None
        found = _versions(conn, meta, table, "AND version = %s" if number else "AND is_active",
                          [number] if number else [])
        return found[0] if found else None


def activate(connect: Connect, meta: str, table: str, number: int) -> RuleVersion:
    """Make version `number` the table's only active one (a rollback or roll forward)."""
    with connect() as conn:
        _lock(conn, meta, table)
        found = _versions(conn, meta, table, "AND version = %s", [number])
        if not found:
            known = [v.version for v in _versions(conn, meta, table)]
            raise RulesError(f"table '{table}' has no published version {number}"
                             + (f" (versions: {', '.join(map(str, sorted(known)))})" if known else " (none published)"))
        _deactivate(conn, meta, table)
        conn.execute(sql.SQL("UPDATE {}.{} SET is_active = TRUE WHERE table_name = %s AND version = %s").format(
            sql.Identifier(meta), sql.Identifier(TABLE)), [table, number])
        return _versions(conn, meta, table, "AND version = %s", [number])[0]


def active_versions(connect: Connect, meta: str, tables: list[str]) -> dict[str, RuleVersion]:
    """The active version of each table that has one (none at all before the first publish)."""
    with connect() as conn:
        if not _exists(conn, meta):
            return {}
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(sql.SQL("SELECT * FROM {}.{} WHERE is_active AND table_name = ANY(%s)").format(
                sql.Identifier(meta), sql.Identifier(TABLE)), [tables]).fetchall()
    return {row["table_name"]: _version(row) for row in rows}


def _lock(conn: psycopg.Connection, meta: str, table: str) -> None:
    conn.execute(sql.SQL(DDL).format(meta=sql.Identifier(meta)))
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{meta}.{TABLE}:{table}"])


def _deactivate(conn: psycopg.Connection, meta: str, table: str) -> None:
    conn.execute(sql.SQL("UPDATE {}.{} SET is_active = FALSE WHERE table_name = %s AND is_active").format(
        sql.Identifier(meta), sql.Identifier(TABLE)), [table])


def _exists(conn: psycopg.Connection, meta: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{meta}"."{TABLE}"']).fetchone()[0]


def _versions(conn: psycopg.Connection, meta: str, table: str, where: str = "",
              params: list[Any] | None = None) -> list[RuleVersion]:
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(sql.SQL("SELECT * FROM {}.{} WHERE table_name = %s " + where + " ORDER BY version DESC")
                              .format(sql.Identifier(meta), sql.Identifier(TABLE)), [table, *(params or [])]).fetchall()
    return [_version(row) for row in rows]


def _version(row: dict[str, Any]) -> RuleVersion:
    rules = row["rules"] if not isinstance(row["rules"], str) else json.loads(row["rules"])
    return RuleVersion(table=row["table_name"], version=row["version"], rules=rules, is_active=row["is_active"],
                       created_at=row["created_at"], created_by=row["created_by"], metadata=row["metadata"] or {})
