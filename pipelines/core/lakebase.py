"""Lakebase (PostgreSQL) as config: the pipeline's `lakebase:` connection block (sinks, the run
inventory, published checks) and the `type: lakebase` sink.

No password or token is ever configured: on Databricks the engine mints an OAuth token for the
current identity per connection; locally an embedded PostgreSQL starts on demand; `LDP_LAKEBASE_DSN`
points at any other server.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .sinks import SinkSpec, keyed_copy_problem, register_sink

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def pg_identifier(value: str) -> str:
    """A PostgreSQL name the engine may quote safely: letters, digits, underscore."""
    if not _NAME.match(value) or len(value) > 63:
        raise ValueError("must be a PostgreSQL name of letters, digits and underscores (at most 63), "
                         "not starting with a digit")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakebaseSettings(_Model):
    """Where sinks write. On Databricks: a provisioned `instance` or an autoscaling `endpoint`
    (projects/{p}/branches/{b}/endpoints/{e}); locally neither is needed."""

    instance: str | None = None
    endpoint: str | None = None
    database: str = "databricks_postgres"
    meta_schema: str = "ldp_meta"
    inventory: bool = False  # record every run in {meta_schema} (runs, table_runs, ...)

    @field_validator("meta_schema")
    @classmethod
    def _meta(cls, value: str) -> str:
        return pg_identifier(value)

    @model_validator(mode="after")
    def _one_target(self) -> "LakebaseSettings":
        if self.instance and self.endpoint:
            raise ValueError("set either 'instance' (provisioned) or 'endpoint' (autoscaling), not both")
        return self


class MaterializedView(_Model):
    """A materialized view over a sink's target: created when missing, refreshed after every write."""

    name: str  # schema.view
    query: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _view_name(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a SELECT statement")
        return value.strip().rstrip(";")


def _view_name(view: str) -> str:
    parts = view.split(".")
    if len(parts) != 2:
        raise ValueError(f"{view!r}: name a materialized view as schema.view")
    for part in parts:
        pg_identifier(part)
    return view


@register_sink
class LakebaseSink(SinkSpec):
    """A copy of the table in PostgreSQL, written after the table is, in one transaction."""

    type: Literal["lakebase"]
    schema_name: str = Field(alias="schema")
    table: str | None = None  # default: the table's name
    mode: Literal["replace", "append", "upsert"] = "replace"
    primary_key: tuple[str, ...] = ()
    refresh_views: tuple[str, ...] = ()  # schema.view: existing materialized views refreshed after the write
    views: tuple[MaterializedView, ...] = ()  # materialized views the engine creates over the target

    @field_validator("schema_name", "table")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else pg_identifier(value)

    @field_validator("primary_key")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(pg_identifier(column) for column in value)

    @field_validator("refresh_views")
    @classmethod
    def _views(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_view_name(view) for view in value)

    @model_validator(mode="after")
    def _upsert_needs_key(self) -> "LakebaseSink":
        if self.mode == "upsert" and not self.primary_key:
            raise ValueError("mode 'upsert' needs a primary_key")
        return self

    def location(self, table_name: str) -> tuple[str, str]:
        """(schema, table) in PostgreSQL: the table's own name unless `table:` says otherwise."""
        return self.schema_name, self.table or table_name

    def target(self, table_name: str) -> str:
        return ".".join(self.location(table_name))

    @property
    def write_mode(self) -> str:
        return self.mode

    def cdc_problem(self, stored_as_scd_type: int, removes_rows: bool) -> str | None:
        if self.mode != "upsert":
            return super().cdc_problem(stored_as_scd_type, removes_rows)
        return keyed_copy_problem("upsert", "primary_key", self.primary_key, stored_as_scd_type, removes_rows)
