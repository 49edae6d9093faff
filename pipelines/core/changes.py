"""What a run would change in the tables already stored, before it runs (`ldp_engine plan`).

Pure: it compares what config.yml declares with the stored tables' columns (name -> type as Spark
prints it), read elsewhere. Per table: `create`, `unchanged`, a `schema change` split into additive
(a new column) and breaking (a column dropped or retyped), and `drop` for a table an earlier run of
this pipeline wrote that config.yml no longer declares. Destructive steps come first.
A table without a contract (`columns:`) has no declared schema to compare: it is `unchanged`, saying so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .config import Config, TableConfig
from .contracts import ContractMode
from .vocabulary import CORRUPT_RECORD, RESULT_COLUMNS, OnError, _Word

QUARANTINE_SUFFIX = "_quarantine"
CDC_EVENTS_SUFFIX = "__ldp_cdc_events"  # a CDC target's hidden table of events (the engine's own)
_NO_LONGER_DECLARED = ("no longer declared in config.yml: a Databricks pipeline drops "
                       "the tables it no longer defines; local runs leave it as it is")
_ENGINE_COLUMNS = frozenset((*RESULT_COLUMNS, CORRUPT_RECORD))


class Action(_Word):
    DROP = "drop"
    BREAKING = "schema change (breaking)"
    CREATE = "create"
    ADDITIVE = "schema change (additive)"
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


def plan_changes(config: Config, selected: Iterable[str], stored: Mapping[str, Mapping[str, str] | None],
                 written_before: Iterable[str] = ()) -> list[TableChange]:
    """The changes a run of the `selected` tables makes to the `stored` ones (name -> columns, None when
    the columns cannot be read), plus a `drop` for each stored table in `written_before` (what earlier
    runs of this pipeline wrote) that config.yml declares no more. Destructive first, then by name."""
    changes = [_table_change(config.table(name), stored) for name in selected]
    declared = {name for table in config.tables for name in _datasets(table.name)}
    owned = {name for table in written_before for name in _datasets(table)}
    changes += [TableChange(name, Action.DROP, (_NO_LONGER_DECLARED,))
                for name in sorted(owned) if name in stored and name not in declared]
    return sorted(changes, key=lambda c: (_ORDER.index(c.action), c.table))


def _datasets(table: str) -> tuple[str, ...]:
    """Every stored table a pipeline table owns: itself, its quarantine and a CDC target's events."""
    return (table, table + QUARANTINE_SUFFIX, table + CDC_EVENTS_SUFFIX)


def _table_change(table: TableConfig, stored: Mapping[str, Mapping[str, str] | None]) -> TableChange:
    if table.name not in stored:
        return TableChange(table.name, Action.CREATE, _creates(table))
    columns = stored[table.name]
    if not table.columns or table.contract is ContractMode.OFF:
        return TableChange(table.name, Action.UNCHANGED, ("no contract (columns:): schema not compared",))
    if columns is None:
        return TableChange(table.name, Action.UNCHANGED, ("stored columns unreadable here: not compared",))
    return _schema_change(table, {n: t for n, t in columns.items() if n not in _ENGINE_COLUMNS})


def _creates(table: TableConfig) -> tuple[str, ...]:
    quarantine = table.has_expectations and table.on_error is OnError.QUARANTINE
    return (f"with {table.name}{QUARANTINE_SUFFIX}",) if quarantine else ()


def _schema_change(table: TableConfig, stored: Mapping[str, str]) -> TableChange:
    declared = {c.name: c.type for c in table.columns}
    breaking = [f"column {n}: {stored[n]} -> {t}" for n, t in declared.items() if n in stored and stored[n] != t]
    if table.contract is ContractMode.ENFORCED:
        breaking += [f"drops column {n} ({t})" for n, t in stored.items() if n not in declared]
    additive = [f"adds column {n} ({t})" for n, t in declared.items() if n not in stored]
    if breaking:
        return TableChange(table.name, Action.BREAKING, tuple(breaking + additive))
    if additive:
        return TableChange(table.name, Action.ADDITIVE, tuple(additive))
    return TableChange(table.name, Action.UNCHANGED)
