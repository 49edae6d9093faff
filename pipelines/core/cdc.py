"""CDC specs: a table's `cdc:` / `snapshot_cdc:` block, mirroring Lakeflow's AUTO CDC parameters.

The names and meanings are LDP's own (`dp.create_auto_cdc_flow`, `dp.create_auto_cdc_from_snapshot_flow`)
so a Databricks user reads the config at once, and the registrar can pass `flow_kwargs()` straight
through. Pure: no Spark here; the local semantics live in `pipelines.catalog.cdc`.

Validation raises ValueError (pydantic wraps it in a ValidationError, itself a ValueError) with a
message naming the offending fields; the config loader turns it into a located error.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from .sql import sql_identifier

__all__ = ["CdcSpec", "SnapshotCdcSpec", "OPEN_SOURCE_PARAMETERS", "START_AT", "END_AT"]

START_AT = "__START_AT"  # SCD type 2 history columns, typed like sequence_by (LDP's names)
END_AT = "__END_AT"

# The keyword arguments open-source pyspark 4.2's `create_auto_cdc_flow` takes (SCD type 1 only):
# anything else set in a spec needs the engine's own apply (see `CdcSpec.open_source_gaps`).
OPEN_SOURCE_PARAMETERS = frozenset({"target", "source", "keys", "sequence_by", "apply_as_deletes",
                                    "column_list", "except_column_list", "stored_as_scd_type", "name"})

Columns = tuple[str, ...]


def _columns(value: Any, field: str, *, allow_empty: bool = False) -> Columns:
    """A list of column names: strings, non-blank, no repeats (a repeat is always a typo)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{field} must be a list of column names, got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{field} must name at least one column")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{field} must hold column names (non-empty strings), got {item!r}")
        if item in names:
            raise ValueError(f"{field} names column {item!r} twice")
        names.append(item)
    return tuple(names)


def _scd_type(value: Any) -> int:
    """1 or 2, as an int or the strings "1"/"2" (LDP accepts both)."""
    if isinstance(value, bool):  # bool is an int subclass: `true` is not a type
        raise ValueError(f"stored_as_scd_type must be 1 or 2, got {value!r}")
    if value in (1, 2, "1", "2"):
        return int(value)
    raise ValueError(f"stored_as_scd_type must be 1 or 2, got {value!r}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: Columns
    stored_as_scd_type: Literal[1, 2] = 1
    track_history_column_list: Optional[Columns] = None
    track_history_except_column_list: Optional[Columns] = None

    @field_validator("track_history_column_list", "track_history_except_column_list", mode="before")
    @classmethod
    def _history_lists(cls, value: Any, info: ValidationInfo) -> Optional[Columns]:
        return None if value is None else _columns(value, info.field_name,
                                                   allow_empty=info.field_name.endswith("except_column_list"))

    @property
    def removes_rows(self) -> bool:
        """Whether the target loses rows (a type-1 delete or truncate), not only gains and changes them."""
        return self.stored_as_scd_type == 1

    @property
    def applies_per_key(self) -> bool:
        """Whether each key's rows follow from its own events alone, so a run need only recompute the
        keys its events touch (a truncate spans every key)."""
        return True

    def _history_problems(self) -> list[str]:
        """LDP's rules on the history lists: one of the two, and type 2 only."""
        problems = []
        if self.track_history_column_list is not None and self.track_history_except_column_list is not None:
            problems.append("give track_history_column_list or track_history_except_column_list, not both")
        if self.stored_as_scd_type == 1:
            for name in ("track_history_column_list", "track_history_except_column_list"):
                if getattr(self, name) is not None:
                    problems.append(f"{name} needs stored_as_scd_type: 2 (history is kept by type 2 only)")
        return problems

    @field_validator("keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Columns:
        return _columns(value, "keys")

    @field_validator("stored_as_scd_type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> int:
        return _scd_type(value)


class CdcSpec(_Spec):
    """`cdc:` on a table fed by a change feed: LDP's `create_auto_cdc_flow` parameters, same names."""

    sequence_by: Union[str, Columns]
    apply_as_deletes: Optional[str] = None
    apply_as_truncates: Optional[str] = None
    column_list: Optional[Columns] = None
    except_column_list: Optional[Columns] = None
    ignore_null_updates: bool = False

    @field_validator("sequence_by", mode="before")
    @classmethod
    def _sequence(cls, value: Any) -> Union[str, Columns]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("sequence_by must name a column (or a list of columns), got ''")
            return value
        return _columns(value, "sequence_by")

    @field_validator("apply_as_deletes", "apply_as_truncates", mode="before")
    @classmethod
    def _condition(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{info.field_name} must be a SQL boolean expression such as \"op = 'D'\", "
                             f"got {value!r}")
        return value

    @field_validator("column_list", "except_column_list", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Optional[Columns]:
        return None if value is None else _columns(value, info.field_name,
                                                   allow_empty=info.field_name.endswith("except_column_list"))

    @field_validator("ignore_null_updates", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> bool:
        if not isinstance(value, bool):  # pydantic would take "yes"/1: a typo should not pass
            raise ValueError(f"ignore_null_updates must be true or false, got {value!r}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> "CdcSpec":
        problems = self._problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        """LDP's cross-field rules, plus what would make the target lose its keys."""
        problems = []
        if self.column_list is not None and self.except_column_list is not None:
            problems.append("give column_list or except_column_list, not both")
        problems += self._history_problems()
        if self.stored_as_scd_type == 2 and self.apply_as_truncates is not None:
            problems.append("apply_as_truncates is supported with stored_as_scd_type: 1 only (as in LDP)")
        if self.column_list is not None:
            missing = [k for k in self.keys if k not in self.column_list]
            if missing:
                problems.append(f"column_list must include the keys; missing {missing}")
            untracked = [c for c in self.track_history_column_list or () if c not in self.column_list]
            if untracked:
                problems.append(f"track_history_column_list names columns not in column_list: {untracked}")
        excluded = [k for k in self.keys if k in (self.except_column_list or ())]
        if excluded:
            problems.append(f"except_column_list cannot exclude a key column: {excluded}")
        return problems

    @property
    def removes_rows(self) -> bool:
        return self.stored_as_scd_type == 1 and (self.apply_as_deletes or self.apply_as_truncates) is not None

    @property
    def applies_per_key(self) -> bool:
        return self.apply_as_truncates is None

    @property
    def sequence_columns(self) -> Columns:
        """The sequence_by column(s); several are compared as a struct, in this order."""
        return (self.sequence_by,) if isinstance(self.sequence_by, str) else self.sequence_by

    def stored_columns(self, input_columns: Sequence[str]) -> Columns:
        """The target's business columns, in input order: column_list / except_column_list applied."""
        if self.column_list is not None:
            return tuple(c for c in input_columns if c in self.column_list)
        dropped = set(self.except_column_list or ())
        return tuple(c for c in input_columns if c not in dropped)

    def tracked_columns(self, input_columns: Sequence[str]) -> Columns:
        """Type 2: the stored non-key columns whose change opens a new version (all by default)."""
        stored = [c for c in self.stored_columns(input_columns) if c not in self.keys]
        if self.track_history_column_list is not None:
            return tuple(c for c in stored if c in self.track_history_column_list)
        dropped = set(self.track_history_except_column_list or ())
        return tuple(c for c in stored if c not in dropped)

    def missing_columns(self, input_columns: Sequence[str]) -> list[str]:
        """Columns the spec names that the input lacks (for a located error when the schema is known)."""
        have = set(input_columns)
        named = [*self.keys, *self.sequence_columns, *(self.column_list or ()), *(self.except_column_list or ()),
                 *(self.track_history_column_list or ()), *(self.track_history_except_column_list or ())]
        return list(dict.fromkeys(c for c in named if c not in have))

    def sequence_expression(self) -> str:
        """sequence_by as a SQL expression: the column, or `struct(a, b)` for a list."""
        if isinstance(self.sequence_by, str):
            return self.sequence_by
        return "struct(" + ", ".join(sql_identifier(c) for c in self.sequence_by) + ")"

    def flow_kwargs(self, target: str, source: str, *, name: str | None = None, once: bool = False,
                    struct: Callable[..., Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for `dp.create_auto_cdc_flow(**kwargs)` on Databricks, LDP's names.

        Only what differs from LDP's defaults is passed (keys, sequence_by and stored_as_scd_type
        always), so the declared call reads like the config. A list sequence_by becomes
        `struct(*cols)` when the registrar passes `pyspark.sql.functions.struct` (the documented
        form), else the SQL expression `struct(a, b)`.
        """
        sequence: Any = self.sequence_by
        if not isinstance(self.sequence_by, str):
            sequence = struct(*self.sequence_by) if struct is not None else self.sequence_expression()
        kwargs: dict[str, Any] = {"target": target, "source": source, "keys": list(self.keys),
                                  "sequence_by": sequence}
        if self.ignore_null_updates:
            kwargs["ignore_null_updates"] = True
        for field in ("apply_as_deletes", "apply_as_truncates"):
            if getattr(self, field) is not None:
                kwargs[field] = getattr(self, field)
        for field in ("column_list", "except_column_list", "track_history_column_list",
                      "track_history_except_column_list"):
            if getattr(self, field) is not None:
                kwargs[field] = list(getattr(self, field))
        kwargs["stored_as_scd_type"] = self.stored_as_scd_type
        if name is not None:
            kwargs["name"] = name
        if once:
            kwargs["once"] = True
        return kwargs

    def open_source_gaps(self) -> list[str]:
        """What open-source pyspark 4.2's `create_auto_cdc_flow` cannot take from this spec (empty:
        the SDP runner may use pyspark's own flow; else the engine applies the changes itself)."""
        gaps = [k for k in self.flow_kwargs("t", "s") if k not in OPEN_SOURCE_PARAMETERS]
        if self.stored_as_scd_type != 1:
            gaps.append("stored_as_scd_type: 2")
        return gaps


class SnapshotCdcSpec(_Spec):
    """`snapshot_cdc:` on a table fed by snapshots: LDP's `create_auto_cdc_from_snapshot_flow`.

    Without `version_by` the input is one snapshot, re-read on every run and versioned by when it is
    taken (LDP's table source). With `version_by` (our name; LDP takes a function returning
    `(DataFrame, version)` instead) the input holds several snapshots told apart by that column, e.g.
    a folder per version read with its partition column (`snapshots/version=3/`): each version later
    than the last one applied is applied in order, and the column is not stored.
    """

    version_by: Optional[str] = None

    @field_validator("version_by", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Optional[str]:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"version_by must name the column holding each snapshot's version, got {value!r}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> "SnapshotCdcSpec":
        problems = self._history_problems()
        if self.version_by in self.keys:
            problems.append(f"version_by {self.version_by!r} cannot be a key: it tells snapshots apart")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def flow_kwargs(self, target: str, source: Any, *, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments for `dp.create_auto_cdc_from_snapshot_flow(**kwargs)`; `source` is a
        table name or a function `(latest_version) -> (DataFrame, version) | None`."""
        kwargs: dict[str, Any] = {"target": target, "source": source, "keys": list(self.keys),
                                  "stored_as_scd_type": self.stored_as_scd_type}
        for field in ("track_history_column_list", "track_history_except_column_list"):
            if getattr(self, field) is not None:
                kwargs[field] = list(getattr(self, field))
        if name is not None:
            kwargs["name"] = name
        return kwargs

    def missing_columns(self, input_columns: Sequence[str]) -> list[str]:
        """Columns the spec names that the input lacks (for a located error when the schema is known)."""
        named = [*self.keys, *([self.version_by] if self.version_by else []),
                 *(self.track_history_column_list or ()), *(self.track_history_except_column_list or ())]
        return list(dict.fromkeys(c for c in named if c not in set(input_columns)))

    def change_spec(self, sequence: str, gone: str, *, current_only: bool = False) -> CdcSpec:
        """The change-feed spec snapshots become once diffed into events: sequenced by the snapshot's
        version, deleted where `gone` (a key missing from the next snapshot). `current_only`: type 1,
        the latest snapshot's rows (what the next snapshot is compared with)."""
        history = self.stored_as_scd_type == 2 and not current_only
        return CdcSpec(keys=self.keys, sequence_by=sequence, apply_as_deletes=f"`{gone}`",
                       except_column_list=[sequence, gone], stored_as_scd_type=2 if history else 1,
                       track_history_column_list=self.track_history_column_list if history else None,
                       track_history_except_column_list=self.track_history_except_column_list if history else None)
