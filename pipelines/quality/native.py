"""DQX checks as native LDP expectations: `{name: SQL that is true for a passing row}`.

Databricks records native expectations in the pipeline event log. Only checks whose DQX semantics
can be written as one SQL boolean are translated; the framework enforces every check itself either
way (see pipelines.ldp.registrar), so a check without translation loses only the event-log metric.
A DQX check fails a row when its condition is TRUE (NULL passes) and, with a `filter`, only where the
filter is TRUE; `NOT coalesce(filter AND condition, false)` states exactly that, never NULL.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from pipelines.core.sql import sql_literal
from pipelines.core.vocabulary import Criticality

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _column(args: Mapping[str, Any]) -> str:
    column = args["column"]
    if not isinstance(column, str):
        raise _Untranslatable
    return column if _SIMPLE_NAME.match(column) else f"({column})"


def _limit(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Untranslatable  # dates, Columns: keep to what DQX and SQL agree on
    return str(value)  # DQX reads a string limit as a column name or SQL expression


def _as_string(args: Mapping[str, Any]) -> str:
    column = _column(args)
    return f"CAST(trim({column}) AS STRING)" if args.get("trim_strings") else f"CAST({column} AS STRING)"


def _allowed(args: Mapping[str, Any]) -> str:
    if not args.get("case_sensitive", True):
        raise _Untranslatable
    items = args["allowed"]
    if not isinstance(items, list) or not items or not all(isinstance(v, (int, float, str)) for v in items):
        raise _Untranslatable
    return ", ".join(str(v) for v in items)  # DQX reads strings as SQL: literals come quoted


def _nulls(args: Mapping[str, Any], condition: str) -> str:
    return condition if args.get("allow_nulls", True) else f"{_column(args)} IS NULL OR {condition}"


# DQX function -> SQL that is TRUE where the check fails
_FAILS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "is_not_null": lambda a: f"{_column(a)} IS NULL",
    "is_null": lambda a: f"{_column(a)} IS NOT NULL",
    "is_not_empty": lambda a: f"{_as_string(a)} = ''",
    "is_not_null_and_not_empty": lambda a: f"{_column(a)} IS NULL OR {_as_string(a)} IS NULL "
                                           f"OR {_as_string(a)} = ''",
    "is_in_list": lambda a: f"NOT ({_column(a)} IN ({_allowed(a)}))",
    "is_not_null_and_is_in_list": lambda a: f"{_column(a)} IS NULL OR NOT ({_column(a)} IN ({_allowed(a)}))",
    "is_not_less_than": lambda a: _nulls(a, f"{_column(a)} < {_limit(a['limit'])}"),
    "is_not_greater_than": lambda a: _nulls(a, f"{_column(a)} > {_limit(a['limit'])}"),
    "is_in_range": lambda a: _nulls(a, f"({_column(a)} < {_limit(a['min_limit'])} "
                                       f"OR {_column(a)} > {_limit(a['max_limit'])})"),
    "regex_match": lambda a: (f"{_column(a)} RLIKE {sql_literal(a['regex'])}" if a.get("negate")
                              else f"NOT ({_column(a)} RLIKE {sql_literal(a['regex'])})"),
    "sql_expression": lambda a: f"({a['expression']})" if a.get("negate") else f"NOT ({a['expression']})",
}


class _Untranslatable(Exception):
    """The check has no exact SQL equivalent here."""


def expectation_sql(check: Mapping[str, Any]) -> str | None:
    """SQL that is TRUE for rows passing the check (never NULL), or None if not expressible."""
    spec = check.get("check") or {}
    translate = _FAILS.get(spec.get("function", ""))
    if translate is None or spec.get("for_each_column"):
        return None
    try:
        fails = translate(spec.get("arguments") or {})
    except (_Untranslatable, KeyError):
        return None
    if check.get("filter"):
        fails = f"({check['filter']}) AND ({fails})"
    return f"NOT coalesce(({fails}), false)"


def native_expectations(checks: list[dict[str, Any]], names: list[str]) -> dict[Criticality, dict[str, str]]:
    """Translatable checks grouped by criticality: {Criticality.ERROR: {name: sql}, Criticality.WARN: {...}}.

    `names` are the checks' effective names (DQX derives one when a check has none), in order."""
    grouped: dict[Criticality, dict[str, str]] = {level: {} for level in Criticality}
    for check, name in zip(checks, names):
        sql = expectation_sql(check)
        if sql is not None:
            grouped[Criticality(check.get("criticality", Criticality.ERROR))][name] = sql
    return grouped
