"""The `type: delta` sink as config: a copy of the table in another Delta table, named or at a path.

Modes: `replace` (the copy equals the table after each run), `append` (each run's rows added, tagged
with the run's id, so a retried run replaces its own rows instead of doubling them), `merge` (rows
updated or inserted by `keys`; never deleted).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .sinks import SinkSpec, keyed_copy_problem, register_sink
from .sources import table_name


@register_sink
class DeltaSink(SinkSpec):
    """A copy of the table in a Delta table, written after the table, in one Delta commit."""

    type: Literal["delta"]
    table: str | None = Field(default=None, min_length=1)
    path: str | None = Field(default=None, min_length=1)  # relative paths: from config.yml's folder
    mode: Literal["replace", "append", "merge"] = "replace"
    keys: tuple[str, ...] = ()

    @property
    def writes_over_connect(self) -> bool:
        """No: its writer takes delta-spark's DeltaTable, which a local Connect server (no Delta Connect
        plugin) cannot serve."""
        return False

    @field_validator("table")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else table_name(value)

    @field_validator("keys")
    @classmethod
    def _valid_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not isinstance(key, str) or not key.strip() for key in value) or len(set(value)) < len(value):
            raise ValueError(f"must name distinct columns, got {list(value)!r}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> "DeltaSink":
        if (self.table is None) == (self.path is None):
            raise ValueError("give the Delta table's name (table) or its location (path), exactly one")
        if (self.mode == "merge") != bool(self.keys):
            raise ValueError("mode 'merge' needs keys (the columns rows are matched on)" if self.mode == "merge"
                             else f"keys are for mode 'merge' only (this sink's mode is {self.mode!r})")
        return self

    def target(self, table_name: str) -> str:
        return self.table or str(self.path)

    @property
    def write_mode(self) -> str:
        return self.mode

    @property
    def lakeflow_sink(self) -> str | None:
        return "create_sink" if self.mode == "append" else None  # a Lakeflow sink only appends

    def cdc_problem(self, stored_as_scd_type: int, removes_rows: bool) -> str | None:
        if self.mode != "merge":
            return super().cdc_problem(stored_as_scd_type, removes_rows)
        return keyed_copy_problem("merge", "keys", self.keys, stored_as_scd_type, removes_rows)
