"""CDC problems found before Spark starts: columns a `cdc:` / `snapshot_cdc:` block names that its input
cannot have. Known only where the input's schema is declared: a source with a `schema:` (DDL) and no
transformation (`PassThrough`) feeds CDC exactly those columns."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping

from .config import Config, TableConfig
from .ddl import ddl_columns
from .errors import Problem
from .loader import SOURCE, PassThrough, Transformation

__all__ = ["cdc_problems", "ddl_columns"]


def cdc_problems(config: Config, tables: Iterable[TableConfig],
                 functions: Mapping[str, Transformation]) -> list[Problem]:
    """A located problem per CDC table naming columns its declared input lacks."""
    positions = {t.name: i for i, t in enumerate(config.tables)}
    problems = []
    for table in tables:
        spec, key = (table.cdc, "cdc") if table.cdc is not None else (table.snapshot_cdc, "snapshot_cdc")
        ddl = getattr(table.source, "schema_ddl", None)
        if spec is None or not ddl or functions.get(table.name) != PassThrough(SOURCE):
            continue
        columns = ddl_columns(ddl)
        missing = spec.missing_columns(columns)
        if missing:
            problems.append(replace(Problem(
                f"{key} names column(s) {missing} that the source's declared schema lacks", table=table.name,
                key=key, value=ddl, hint=f"its columns: {columns}; fix the names, or shape the input with "
                                         f"a transformation ({table.layer}/{table.name}.py)"),
                file=str(config.path), index=positions.get(table.name)))
    return problems
