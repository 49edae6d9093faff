"""What a run would change in the tables already stored, before it runs (`ldp_engine plan`).

Pure: it compares what config.yml declares with the stored tables' columns (name -> type as Spark
prints it), read elsewhere. Per table: `create`, `unchanged`, a `schema change` split into additive
(a new column) and breaking (a column dropped or retyped), and `drop` for a table an earlier run of
this pipeline wrote that config.yml no longer declares. Destructive steps come first.
A table's new columns are its contract's (`columns:`) or, without one, its query's resolved on empty
inputs (`runners.resolve`); where neither is known it is `unchanged`, saying why.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import Config, TableConfig
from .contracts import ContractMode
from .loader import transformations_folder
from .vocabulary import (CDC_EVENTS_SUFFIX, CORRUPT_RECORD, LANDING_SUFFIX, QUARANTINE_SUFFIX, RESULT_COLUMNS, OnError,
                         _Word, landing_name)

_NO_LONGER_DECLARED = ("no longer declared in config.yml: a Databricks pipeline drops "
                       "the tables it no longer defines; local runs leave it as it is")
_FULL_REFRESH = ("full refresh needed: a streaming table keeps the rows it appended under the old schema "
                 "(run with --full-refresh, which recomputes it from its sources)")
_ENGINE_COLUMNS = frozenset((*RESULT_COLUMNS, CORRUPT_RECORD))
Columns = Mapping[str, str]  # column -> its type as Spark prints it


class Action(_Word):
    DROP = "drop"
    BREAKING = "schema change (breaking)"
    CREATE = "create"
    ADDITIVE = "schema change (additive)"
    UPDATE = "update"  # same columns; its checks, sinks or monitor changed since the last run
    UNCHANGED = "unchanged"

    @property
    def destructive(self) -> bool:
        return self in (Action.DROP, Action.BREAKING)


_ORDER = list(Action)


@dataclass(frozen=True)
class TableChange:
    table: str
    action: Action
    details: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "action": self.action.value, "destructive": self.action.destructive,
                "details": list(self.details)}


def plan_changes(config: Config, selected: Iterable[str], stored: Mapping[str, Columns | None],
                 written_before: Iterable[str] = (), resolved: Mapping[str, Columns | str] | None = None,
                 previous: Mapping[str, Mapping[str, Any]] | None = None,
                 streaming: Iterable[str] = ()) -> list[TableChange]:
    """The changes a run of the `selected` tables makes to the `stored` ones (name -> columns, None when
    the columns cannot be read), plus a `drop` for each stored table in `written_before` (what earlier
    runs of this pipeline wrote) that config.yml declares no more. A table's new columns are its
    contract's, else `resolved`'s (its query resolved on empty inputs, or why it could not be; None: not
    resolved). `previous` holds each table's `declarations` as the last run recorded them: a change of
    checks, sinks or monitor since is listed too; a breaking change to one of the `streaming` tables
    says it needs a full refresh. Destructive first, then by name."""
    streams = set(streaming)
    changes = [_with_declarations(_refreshed(_table_change(config.table(name), stored, resolved), streams),
                                  config, previous or {}) for name in selected]
    declared = {name for table in config.tables for name in _datasets(table.name)}
    declared |= {landing_name(flow.name) for table in config.tables for flow in table.flows}
    owned = {name for table in written_before for name in _datasets(table)}
    owned |= {landing_name(flow) for table in written_before  # a flow's landing, as the last run declared it
              for flow in ((previous or {}).get(table) or {}).get("flows") or {}}
    changes += [TableChange(name, Action.DROP, (_NO_LONGER_DECLARED,))
                for name in sorted(owned) if name in stored and name not in declared]
    return sorted(changes, key=lambda c: (_ORDER.index(c.action), c.table))


def _refreshed(change: TableChange, streaming: set[str]) -> TableChange:
    if change.action is not Action.BREAKING or change.table not in streaming:
        return change
    return TableChange(change.table, change.action, (*change.details, _FULL_REFRESH))


def _datasets(table: str) -> tuple[str, ...]:
    """Every stored table a pipeline table owns: itself, its quarantine, a CDC target's events and an
    incremental database read's landed rows."""
    return (table, table + QUARANTINE_SUFFIX, table + CDC_EVENTS_SUFFIX, table + LANDING_SUFFIX)


def _table_change(table: TableConfig, stored: Mapping[str, Columns | None],
                  resolved: Mapping[str, Columns | str] | None) -> TableChange:
    if table.name not in stored:
        return TableChange(table.name, Action.CREATE, _creates(table))
    if table.columns and table.contract is not ContractMode.OFF:
        wanted: Columns | str | None = {c.name: c.type for c in table.columns}
        strict = table.contract is ContractMode.ENFORCED
    elif resolved is None:
        return TableChange(table.name, Action.UNCHANGED, ("no contract (columns:), not resolved: schema not compared",))
    else:
        wanted, strict = resolved.get(table.name), True
    if not isinstance(wanted, Mapping):
        return TableChange(table.name, Action.UNCHANGED, (f"schema not compared: {wanted or 'not resolved'}",))
    columns = stored[table.name]
    if columns is None:
        return TableChange(table.name, Action.UNCHANGED, ("stored columns unreadable here: not compared",))
    return _schema_change(table.name, _business(wanted), _business(columns), strict)


def _business(columns: Columns) -> dict[str, str]:
    return {name: type_ for name, type_ in columns.items() if name not in _ENGINE_COLUMNS}


def _creates(table: TableConfig) -> tuple[str, ...]:
    quarantine = table.has_expectations and table.on_error is OnError.QUARANTINE
    return (f"with {table.name}{QUARANTINE_SUFFIX}",) if quarantine else ()


def _schema_change(name: str, wanted: Mapping[str, str], stored: Mapping[str, str], strict: bool) -> TableChange:
    """`strict`: the table will hold exactly `wanted` (a stored column it lacks is dropped)."""
    breaking = [f"column {n}: {stored[n]} -> {t}" for n, t in wanted.items() if n in stored and stored[n] != t]
    if strict:
        breaking += [f"drops column {n} ({t})" for n, t in stored.items() if n not in wanted]
    additive = [f"adds column {n} ({t})" for n, t in wanted.items() if n not in stored]
    if breaking:
        return TableChange(name, Action.BREAKING, tuple(breaking + additive))
    if additive:
        return TableChange(name, Action.ADDITIVE, tuple(additive))
    return TableChange(name, Action.UNCHANGED)


def declarations(table: TableConfig, base_dir: Path) -> dict[str, Any]:
    """What a run enforces on and feeds from a table, as JSON, for the run record: its checks (an
    expectations file by its content's digest), its sinks by target, its monitor, its flows by name."""
    checks = {_check_name(check): check for check in table.expectations}
    if table.expectations_file:
        path = base_dir / table.expectations_file
        checks[f"file {table.expectations_file}"] = (
            hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None)
    declared: dict[str, Any] = {
        "checks": checks,
        "sinks": {f"{sink.type} {sink.target(table.name)}": sink.model_dump(mode="json", exclude_defaults=True)
                  for sink in table.sinks},
        "monitor": table.monitor.model_dump(mode="json", exclude_defaults=True) if table.monitor else None}
    if table.flows:  # only then: a table without flows keeps the declarations it had before flows were recorded
        declared["flows"] = {flow.name: flow.model_dump(mode="json", exclude_defaults=True) for flow in table.flows}
    return declared


_NOT_SHAPING = {"tags", "comment", "expectations", "expectations_file", "monitor", "sinks"}  # a table's columns


def query_digests(config: Config, names: Iterable[str], mode: str) -> dict[str, str]:
    """Each of `names` whose output columns follow from the project alone, by a digest of what shapes
    them: the transformations folder's code (every .py and .sql file, since a helper module may shape any
    table), the table's declaration but its checks, sinks and monitor, the mode, and its upstream tables'
    digests. Equal digests, equal columns: `plan` then takes a table's columns as stored instead of
    resolving its query. A table whose columns come from data or from outside (an inferred schema, an
    external table) has none, nor has any table downstream of it."""
    code = _code_digest(transformations_folder(config))
    digests: dict[str, str | None] = {}

    def digest(name: str) -> str | None:
        if name not in digests:
            table = config.by_name.get(name)
            upstream = [digest(u) for u in table.depends_on] if table else [None]
            fixed = table is not None and (table.source is None or table.source.columns_declared)
            digests[name] = None if code is None or not fixed or None in upstream else _digest(
                [code, mode, table.model_dump(mode="json", exclude=_NOT_SHAPING), upstream])  # type: ignore[union-attr]
        return digests[name]

    return {name: found for name in names if (found := digest(name)) is not None}


def _code_digest(folder: Path | None) -> str | None:
    if folder is None or not folder.is_dir():
        return None
    files = sorted(p for pattern in ("*.py", "*.sql") for p in folder.rglob(pattern) if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def to_resolve(config: Config, names: Iterable[str], uncontracted: Iterable[str], digests: Mapping[str, str],
               previous: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Of `names`, the tables `plan` must resolve on empty inputs: each table without a contract whose
    query digest differs from the one its last successful run recorded, and the selected tables upstream
    of it (their new columns are its input). The others' stored columns are their resolved ones."""
    chosen = set(names)
    changed = [n for n in uncontracted if not digests.get(n) or (previous.get(n) or {}).get("query") != digests[n]]
    needed: set[str] = set()
    pending = list(changed)
    while pending:
        name = pending.pop()
        if name in chosen and name not in needed:
            needed.add(name)
            pending += config.by_name[name].depends_on
    return [n for n in names if n in needed]


DECLARATIONS_PROPERTY = "ldp_engine.declarations"


def declarations_property(table: TableConfig, base_dir: Path) -> str:
    """The table's `declarations` as a Databricks table property, for `plan --target databricks`, which has
    no local run record: each check, sink and monitor by a digest of its declaration, so the value stays
    short whatever the checks hold (a change is named, its keys are not)."""
    return json.dumps(_digested(declarations(table, base_dir)), sort_keys=True, separators=(",", ":"))


def _digested(declared: Mapping[str, Any]) -> dict[str, Any]:
    return {"digests": True,
            "checks": {name: _digest(check) for name, check in declared["checks"].items()},
            "sinks": {target: _digest(sink) for target, sink in declared["sinks"].items()},
            "monitor": None if declared["monitor"] is None else _digest(declared["monitor"]),
            **({"flows": {name: _digest(flow) for name, flow in declared["flows"].items()}} if "flows" in declared
               else {})}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _check_name(check: Mapping[str, Any]) -> str:
    return str(check.get("name") or json.dumps(check.get("check"), sort_keys=True))


def _with_declarations(change: TableChange, config: Config, previous: Mapping[str, Mapping[str, Any]]) -> TableChange:
    before = previous.get(change.table)
    if before is None or change.action is Action.CREATE:
        return change
    now = declarations(config.table(change.table), config.base_dir)
    if before.get("digests"):  # a Databricks table's property: compared digest to digest
        now = _digested(now)
    details = [*_keyed_changes("check", before.get("checks") or {}, now["checks"]),
               *_keyed_changes("sink", before.get("sinks") or {}, now["sinks"])]
    details += _keyed_changes("flow", before.get("flows") or {}, now.get("flows") or {})
    if before.get("monitor") != now["monitor"]:  # None: no monitor; {}: one with every default
        details.append("monitor " + ("added" if before.get("monitor") is None else "removed" if now["monitor"] is None
                                     else _changed("changed", before["monitor"], now["monitor"])))
    if not details:
        return change
    action = Action.UPDATE if change.action is Action.UNCHANGED else change.action
    return TableChange(change.table, action, (*change.details, *details))


def _keyed_changes(kind: str, before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    lines = [f"{kind} {key} added" for key in now if key not in before]
    lines += [f"{kind} {key} removed" for key in before if key not in now]
    lines += [_changed(f"{kind} {key} changed", before[key], now[key]) for key in now
              if key in before and before[key] != now[key]]
    return lines


def _changed(what: str, old: Any, new: Any) -> str:
    """`what`, with each key that changed when both declarations are at hand (not digests)."""
    changed = _changed_keys(old, new) if isinstance(old, dict) and isinstance(new, dict) else []
    return what + (": " + ", ".join(changed) if changed else "")


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{key} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted({*old, *new}) if old.get(key) != new.get(key)]
