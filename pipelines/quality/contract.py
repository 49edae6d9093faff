"""A table's schema contract applied to its transformation's output, before checks and before any write.

Two ways to the same verdict. Where the schema may be read (the Spark runner), `check_schema` compares it
with the declared columns at once and names every column at fault. Inside a pipeline's query functions the
schema may not be read, so `guarded` checks through `typeof`, which Spark folds to a constant: a table
that keeps its contract pays nothing, and one that breaks it fails on its first row, naming the columns.
A batch query that yields no row fails too: a one-row branch outer-joined to the output's first row
carries the same `typeof` verdict, and Spark prunes the branch away when the verdict is clean.
Nullability is a property of the data, checked lazily on every runner: the first row holding a NULL
where `nullable: false` fails the write, which then leaves the previous version in place.
"""
from __future__ import annotations

import logging
from typing import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.core.config import TableConfig
from pipelines.core.contracts import ContractMode, contract_problems
from pipelines.core.errors import Problem, RunError
from pipelines.core.sql import sql_identifier
from pipelines.core.vocabulary import CORRUPT_RECORD, RESULT_COLUMNS

log = logging.getLogger(__name__)


class ContractViolation(RunError):
    """The transformation's output does not have the columns its table declares (the table fails)."""


def check_schema(config: TableConfig, df: DataFrame) -> list[str]:
    """Raise `ContractViolation` naming each column at fault; return (and log) the new columns an
    additive contract lets through."""
    if not config.columns:
        return []
    kept = _engine_columns(config)
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields if f.name not in kept}
    problems, extra = contract_problems(config.columns, config.contract, actual)
    if problems:
        raise ContractViolation([Problem(f"breaks its contract ({config.contract}): {problem}", table=config.name,
                                         key="columns") for problem in problems])
    if extra and config.contract is ContractMode.ADDITIVE:
        log.warning("table %s: column(s) %s are new (not in columns:); the additive contract lets them through",
                    config.name, ", ".join(extra))
        return list(extra)
    return []


def new_columns(config: TableConfig, columns: Iterable[str]) -> list[str]:
    """The columns an additive contract let through beyond its declared ones (of a written table's
    `columns`; DQX's result columns and the engine's own are not the transformation's)."""
    if not config.columns or config.contract is not ContractMode.ADDITIVE:
        return []
    known = {c.name for c in config.columns} | set(_engine_columns(config)) | set(RESULT_COLUMNS)
    return [name for name in columns if name not in known]


def guarded(config: TableConfig, df: DataFrame, *, schema_checked: bool, streaming: bool = False) -> DataFrame:
    """`df` with its declared columns first, in declared order, carrying their comments, and failing on
    its first row that breaks the contract: NULL where not allowed and, unless `schema_checked`, a
    type or (enforced) a column the contract does not name; a batch `df` without rows fails on the
    latter too (a stream's empty batch writes nothing to fail)."""
    if not config.columns or config.contract is ContractMode.OFF:  # documentation only: nothing applied
        return df
    columns = config.columns
    failures = [] if schema_checked else [_schema_failure(config)]
    if required := [c.name for c in columns if not c.nullable]:
        failures.append(_null_failure(config.name, required))
    if failures:
        checked = df.where(F.coalesce(*failures).isNull())
        df = checked if schema_checked or streaming else checked.union(_without_rows_failure(df, failures[0]))
    declared = [F.col(sql_identifier(c.name)) for c in columns]
    if config.contract is ContractMode.ENFORCED:
        rest = [F.col(name) for name in _engine_columns(config)]
    else:
        rest = [F.expr(_except(c.name for c in columns))]
    df = df.select(*declared, *rest)
    for column in columns:
        if column.comment:
            df = df.withMetadata(column.name, {"comment": column.comment})
    return df


def _schema_failure(config: TableConfig) -> Column:
    """Null when the output's column types (and, enforced, its column set) match; else a raised error
    naming each column at fault. Every operand is a `typeof`, folded to a constant at planning."""
    faults = [F.when(F.typeof(F.col(sql_identifier(c.name))) != F.lit(c.type),
                     F.concat(F.lit(f"column {c.name} is "), F.typeof(F.col(sql_identifier(c.name))),
                              F.lit(f", declared {c.type}")))
              for c in config.columns]
    if config.contract is ContractMode.ENFORCED:
        undeclared = _except([*(c.name for c in config.columns), *_engine_columns(config)])
        extra = F.expr(f"typeof(struct({undeclared}))")
        faults.append(F.when(extra != F.lit("struct<>"),
                             F.concat(F.lit("columns not declared: "), extra)))
    message = F.concat_ws("; ", *faults)
    return F.when(message != F.lit(""), F.raise_error(F.concat(
        F.lit(f"table {config.name} breaks its contract ({config.contract}): "), message)))


def _without_rows_failure(df: DataFrame, schema_failure: Column) -> DataFrame:
    """No row, or a raised `schema_failure` when `df` breaks the contract even without rows: one row
    outer-joined to `df`'s first, so its columns exist (NULL) for `typeof`. A clean verdict folds the
    filter to false and Spark prunes the branch before it runs."""
    one = df.sparkSession.range(1).select(F.lit(1).alias(_GUARD_ROW))
    return one.join(df.limit(1), how="left").drop(_GUARD_ROW).where(schema_failure.isNotNull())


_GUARD_ROW = "__ldp_contract_guard"


def _null_failure(table: str, required: list[str]) -> Column:
    """Null unless a `nullable: false` column holds NULL in this row; then a raised error naming them."""
    nulls = [F.col(sql_identifier(name)).isNull() for name in required]
    named = F.concat_ws(", ", *[F.when(null, F.lit(name)) for null, name in zip(nulls, required)])
    any_null = nulls[0]
    for null in nulls[1:]:
        any_null = any_null | null
    return F.when(any_null, F.raise_error(F.concat(
        F.lit(f"table {table} breaks its contract: NULL in column(s) declared nullable: false: "), named)))


def _engine_columns(config: TableConfig) -> tuple[str, ...]:
    """Columns the engine itself needs past the transformation and no contract declares: the raw text of
    a malformed csv/json record, which the implicit `malformed_record` check reads."""
    return (CORRUPT_RECORD,) if config.source is not None and config.source.flags_malformed_records else ()


def _except(names: Iterable[str]) -> str:
    return "* except (" + ", ".join(sql_identifier(n) for n in names) + ")"
