"""Loading and validating a table's DQX checks (no Spark session needed).

Checks are DQX's own metadata format, declared inline under `expectations:` or in the YAML file named
by `expectations_file:` (relative to config.yml). Validation uses DQX's validator, so an unknown
function, a missing or unexpected argument or a bad criticality exits 1 before anything runs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml_rs

from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import ConfigError, Problem
from pipelines.core.source_checks import MALFORMED_CHECK, checks_malformed_records
from pipelines.core.vocabulary import Criticality

_CHECK_DUMP = re.compile(r"\s*(Check details)?:?\s*\{'.*\}", re.S)  # DQX repeats the whole check


def table_checks(config: Config, table: TableConfig) -> list[dict[str, Any]]:
    """Inline expectations followed by those of expectations_file; raise ConfigError if unreadable."""
    checks = [dict(check) for check in table.expectations]
    if table.expectations_file:
        path = config.base_dir / table.expectations_file
        try:
            path = path.resolve()
            loaded = yaml_rs.loads(path.read_text(encoding="utf-8"), parse_datetime=False)
        except FileNotFoundError:
            raise ConfigError(Problem("expectations file not found", file=str(config.path),
                                      table=table.name, key="expectations_file", value=str(path))) from None
        except (OSError, ValueError) as exc:  # a folder, no permission, a name too long, not UTF-8...
            reason = getattr(exc, "strerror", None) or (
                "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc))
            raise ConfigError(Problem(f"cannot read expectations file: {reason}", file=str(config.path),
                                      table=table.name, key="expectations_file",
                                      value=_short_path(path))) from None
        except yaml_rs.YAMLDecodeError as exc:
            raise ConfigError(Problem(f"invalid YAML in expectations file: {exc}", file=str(path),
                                      table=table.name)) from None
        if isinstance(loaded, dict) and "checks" in loaded:
            loaded = loaded["checks"]
        if not isinstance(loaded, list):
            raise ConfigError(Problem("an expectations file must hold a list of DQX checks",
                                      file=str(path), table=table.name))
        checks += loaded
    return checks


def named_checks(config: Config, table: TableConfig) -> list[tuple[str, Criticality]]:
    """(name, criticality) of each named check of a table, in order (an unnamed check gets DQX's name,
    which only a Spark session can derive); raise ConfigError if its checks are unreadable."""
    named = [(check["name"], Criticality(check.get("criticality", Criticality.ERROR.value)))
             for check in table_checks(config, table) if check.get("name")]
    if checks_malformed_records(table):  # the implicit check on the source's malformed records
        named.append((MALFORMED_CHECK, Criticality.ERROR))
    return named


def _short_path(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:200] + "..."


def validate_expectations(config: Config, tables: list[TableConfig] | tuple[TableConfig, ...]
                          ) -> list[Problem]:
    """Every problem in every table's checks, named by table, check and reason."""
    tables = [t for t in tables if t.has_expectations]
    problems: list[Problem] = []
    positions = {t.name: i for i, t in enumerate(config.tables)}
    for table in tables:
        try:
            checks = table_checks(config, table)
        except ConfigError as exc:
            problems += exc.problems
            continue
        problems += check_problems(checks, file=str(config.path), table=table.name, key="expectations",
                                   index=positions[table.name])
    return problems


def check_problems(checks: list[Any], **where: Any) -> list[Problem]:
    """DQX's structural validation of a list of checks; each problem located by `where` (file, table...)."""
    if not checks:
        return []
    from databricks.labs.dqx.engine import DQEngineCore  # structural checks only: no Spark needed

    problems: list[Problem] = []
    for index, check in enumerate(checks):
        label = _label(check, index)
        if not isinstance(check, dict):
            problems.append(Problem(f"{label} must be a mapping", **where))
            continue
        status = DQEngineCore.validate_checks([check], semantic_validation_mode=None)
        problems += [Problem(f"{label}: {_CHECK_DUMP.sub('', str(error))}", **where)
                     for error in dict.fromkeys(status.errors)]
    return problems


def _label(check: Any, index: int) -> str:
    name = check.get("name") if isinstance(check, dict) else None
    function = (check.get("check") or {}).get("function") if isinstance(check, dict) else None
    return f"check #{index + 1}" + (f" '{name}'" if name else f" ({function})" if function else "")


def referenced_columns(checks: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Plain column names each check reads (`column`, `columns`, `for_each_column`), by check label."""
    found: dict[str, set[str]] = {}
    for index, check in enumerate(checks):
        spec = check.get("check") or {}
        args = spec.get("arguments") or {}
        names: list[Any] = [args.get("column")] + list(args.get("columns") or [])
        names += [c for c in spec.get("for_each_column") or [] if isinstance(c, str)]
        plain = {n for n in names if isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)}
        if plain:
            found[_label(check, index)] = plain
    return found
