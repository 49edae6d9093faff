"""What a run would change in the tables already stored, before it runs (`ldp_engine plan`).

Pure: it compares what config.yml declares with the stored tables' columns (name -> type as Spark
prints it), read elsewhere. Per table: `create`, `unchanged`, a `schema change` split into additive
(a new column) and breaking (a column dropped or retyped), and `drop` for a table an earlier run of
this pipeline wrote that config.yml no longer declares. Destructive steps come first.
A table's new columns are its contract's (`columns:`) or, without one, its query's resolved on empty
inputs (`runners.resolve`); where neither is known it is `unchanged`, saying why.
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
Columns = Mapping[str, str]  # column -> its type as Spark prints it


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


def plan_changes(config: Config, selected: Iterable[str], stored: Mapping[str, Columns | None],
                 written_before: Iterable[str] = (), resolved: Mapping[str, Columns | str] | None = None
                 ) -> list[TableChange]:
    """The changes a run of the `selected` tables makes to the `stored` ones (name -> columns, None when
    the columns cannot be read), plus a `drop` for each stored table in `written_before` (what earlier
    runs of this pipeline wrote) that config.yml declares no more. A table's new columns are its
    contract's, else `resolved`'s (its query resolved on empty inputs, or why it could not be; None: not
    resolved). Destructive first, then by name."""
    changes = [_table_change(config.table(name), stored, resolved) for name in selected]
    declared = {name for table in config.tables for name in _datasets(table.name)}
    owned = {name for table in written_before for name in _datasets(table)}
    changes += [TableChange(name, Action.DROP, (_NO_LONGER_DECLARED,))
                for name in sorted(owned) if name in stored and name not in declared]
    return sorted(changes, key=lambda c: (_ORDER.index(c.action), c.table))


def _datasets(table: str) -> tuple[str, ...]:
    """Every stored table a pipeline table owns: itself, its quarantine and a CDC target's events."""
    return (table, table + QUARANTINE_SUFFIX, table + CDC_EVENTS_SUFFIX)


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
