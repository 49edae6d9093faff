"""A pipeline's tables as Unity Catalog holds them, for `ldp_engine plan --target databricks`.

One paged `tables.list` of the pipeline's schema: each table's columns (their `type_json`, Spark's own
JSON, printed as Spark prints types), whether this pipeline owns it (`pipeline_id`), and the
declarations (checks, sinks, monitor) its last update registered, from the table property the
registrar sets. Nothing is changed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines.core.changes import DECLARATIONS_PROPERTY
from pipelines.core.contracts import spark_type


@dataclass(frozen=True)
class DeployedTables:
    columns: dict[str, dict[str, str] | None]  # table -> column -> type; None where a column's type is unknown
    owned: frozenset[str]  # the tables the pipeline `pipeline_id` created
    declared: dict[str, dict[str, Any]]  # table -> its declarations' digests, as its last update registered them


def deployed_tables(workspace: Any, catalog: str, schema: str, pipeline_id: str | None) -> DeployedTables:
    """The tables of `catalog.schema`, and those the pipeline `pipeline_id` owns (none without an id)."""
    columns: dict[str, dict[str, str] | None] = {}
    owned = set()
    declared = {}
    for table in workspace.tables.list(catalog_name=catalog, schema_name=schema):
        columns[table.name] = _columns(table.columns or [])
        if pipeline_id and table.pipeline_id == pipeline_id:
            owned.add(table.name)
        if (registered := _declarations(table.properties or {})) is not None:
            declared[table.name] = registered
    return DeployedTables(columns, frozenset(owned), declared)


def _declarations(properties: dict[str, str]) -> dict[str, Any] | None:
    try:
        value = json.loads(properties[DECLARATIONS_PROPERTY])
    except (KeyError, ValueError):  # not registered by this engine (or by an older one): not compared
        return None
    return value if isinstance(value, dict) else None


def _columns(infos: list[Any]) -> dict[str, str] | None:
    try:
        return {c.name: spark_type(json.loads(c.type_json)["type"]) for c in infos}
    except (TypeError, ValueError, KeyError):  # no type_json (a view, an old table): not compared
        return None
