"""Unity Catalog column tags as config.yml's `columns:` declare them, kept by `ldp_engine tags apply`.

A pipeline cannot tag its tables' columns (neither `dp.table` nor its `schema=` takes tags), so the
tags are assigned after the update that created the columns, through the SDK's entity tag assignments:
one list per tagged column, then a create or an update per tag that differs. A tag set by someone else,
or no longer declared, is left as it is: column tags are shared with governance tools and Databricks'
own data classification, and deleting what the engine cannot prove it set would be wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from databricks.sdk.errors import NotFound
from databricks.sdk.service.catalog import EntityTagAssignment

from pipelines.core.config import Config, TableConfig

COLUMNS = "columns"  # the entity type of a column's tag assignments


@dataclass(frozen=True)
class TagChange:
    action: str  # create | update | unchanged | no-column (the table or column does not exist yet)
    column: str  # catalog.schema.table.column
    key: str
    value: str
    before: str | None = None  # the value in Unity Catalog, for an update

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "column": self.column, "key": self.key, "value": self.value,
                "before": self.before}


def plan_tags(workspace: Any, config: Config, catalog: str, tables: Iterable[TableConfig]) -> list[TagChange]:
    """Per declared tag of the selected tables' columns: what `apply_tags` would do, read from the
    column's current assignments."""
    changes = []
    for table in tables:
        for column in (c for c in table.columns if c.tags):
            entity = f"{config.full_name(table.name, catalog)}.{column.name}"
            declared = sorted(column.tags.items())
            try:
                current = {a.tag_key: a.tag_value or "" for a in
                           workspace.entity_tag_assignments.list(entity_type=COLUMNS, entity_name=entity)}
            except NotFound:
                changes += [TagChange("no-column", entity, key, value) for key, value in declared]
                continue
            changes += [TagChange("create" if key not in current else "unchanged" if current[key] == value
                                  else "update", entity, key, value, current.get(key)) for key, value in declared]
    return changes


def apply_tags(workspace: Any, changes: Iterable[TagChange]) -> None:
    """Create and update the tags `changes` name (a value-less tag is a key alone)."""
    for change in changes:
        assignment = EntityTagAssignment(entity_name=change.column, tag_key=change.key, entity_type=COLUMNS,
                                         tag_value=change.value or None)
        if change.action == "create":
            workspace.entity_tag_assignments.create(tag_assignment=assignment)
        elif change.action == "update":
            workspace.entity_tag_assignments.update(entity_type=COLUMNS, entity_name=change.column,
                                                    tag_key=change.key, tag_assignment=assignment,
                                                    update_mask="tag_value")
