"""A table's source checked before Spark starts, located in config.yml: each source type says what is
wrong with it (`SourceSpec.problems`) or may go silently wrong (`warnings`); the file source's own
checks (folder, reader options) are in `file_checks`. Also whether a table quarantines malformed records.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from .errors import Problem
from .file_checks import option_problems  # noqa: F401 - part of this module's public face
from .vocabulary import CORRUPT_RECORD, MALFORMED_CHECK  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from .config import Config, TableConfig
    from .sources import SourceSpec


def source_problems(config: Config, tables: Iterable[TableConfig]) -> list[Problem]:
    """Every problem with the tables' sources found before Spark starts (each source type says which:
    for files, a missing local folder, unknown or ill-typed options)."""
    positions = {t.name: i for i, t in enumerate(config.tables)}
    return [replace(p, file=str(config.path), index=positions.get(table.name))
            for table in tables if table.source is not None
            for p in table.source.problems(config.base_dir, table.name)]


def flags_malformed_records(source: SourceSpec | None) -> bool:
    """Whether malformed records of this source are flagged (the source type says: csv/json files with a
    declared schema whose reader options leave Spark's default handling)."""
    return source is not None and source.flags_malformed_records


def checks_malformed_records(table: TableConfig) -> bool:
    """Whether the table quarantines its source's malformed records as the `malformed_record` check: its
    source flags them, and it is a table with checks (the quarantine, drop or fail machinery every runner
    builds for `has_expectations`)."""
    return table.has_expectations and flags_malformed_records(table.source)


def source_warnings(config: Config, tables: Iterable[TableConfig], mode: str = "batch") -> list[Problem]:
    """What the tables' sources may yield silently wrong (each source type says which), and in streaming
    mode each source a user may expect to stream but that cannot (its `batch_only_reason`), located."""
    positions = {t.name: i for i, t in enumerate(config.tables)}
    return [replace(p, file=str(config.path), index=positions.get(table.name))
            for table in tables if table.source is not None
            for p in [*table.source.warnings(table.name), *_not_a_stream(table, mode)]]


def _not_a_stream(table: TableConfig, mode: str) -> list[Problem]:
    source = table.source
    if mode != "streaming" or source is None or source.batch_only_reason is None:
        return []
    return [Problem(f"in streaming mode this table is a materialized view, read whole and replaced each run: "
                    f"{source.batch_only_reason}", table=table.name, key="source.type", value=source.type)]
