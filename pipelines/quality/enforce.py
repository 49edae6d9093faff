"""Applying a table's DQX checks: one evaluation per row, results as columns, metrics as aggregates.

`Expectations.apply` returns a CheckedFrame: the input plus DQX's `_errors`/`_warnings` columns and
the aggregate expressions that count, during the same write, how many rows each check failed.
The storage layer decides how to write it (one pass: main + quarantine from a single computation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from unittest.mock import create_autospec

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.engine.config import Config, TableConfig
from pipelines.engine.errors import Problem, RunError
from pipelines.engine.session import on_databricks

from .checks import referenced_columns, table_checks

ERRORS = "_errors"
WARNINGS = "_warnings"
RESULT_COLUMNS = (ERRORS, WARNINGS)
OnError = Literal["quarantine", "drop", "fail"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    criticality: str


@dataclass
class QualityStats:
    """What the checks found in one write."""

    rows_quarantined: int = 0
    rows_dropped: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CheckedFrame:
    df: DataFrame  # the input plus _errors and _warnings
    on_error: OnError
    checks: tuple[CheckSpec, ...]

    @property
    def has_errors(self) -> Column:
        return F.col(ERRORS).isNotNull()

    def metrics(self) -> list[Column]:
        """Aggregates for Observation: rows with errors, and rows failing each check."""
        columns = [F.count_if(self.has_errors).alias("dq_error_rows")]
        for index, check in enumerate(self.checks):
            results = ERRORS if check.criticality == "error" else WARNINGS
            failed = F.exists(F.coalesce(F.col(results), F.array()), lambda r: r["name"] == F.lit(check.name))
            columns.append(F.count_if(failed).alias(f"dq_check_{index}"))
        return columns

    def stats(self, observed: dict[str, Any]) -> QualityStats:
        error_rows = int(observed.get("dq_error_rows", 0))
        return QualityStats(
            rows_quarantined=error_rows if self.on_error == "quarantine" else 0,
            rows_dropped=error_rows if self.on_error == "drop" else 0,
            checks=[{"name": c.name, "criticality": c.criticality,
                     "failed": int(observed.get(f"dq_check_{i}", 0))} for i, c in enumerate(self.checks)])


class QualityFailure(RunError):
    """on_error: fail and some rows failed an error-level check (the table is not written)."""


class Expectations:
    """Applies the checks declared in a config; builds the DQX engine lazily, once."""

    def __init__(self, spark: SparkSession, config: Config):
        self.spark = spark
        self.config = config
        self._engine: Any = None
        self._rules: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}

    def apply(self, table: TableConfig, df: DataFrame) -> CheckedFrame | None:
        if not table.has_expectations:
            return None
        rules, checks = self._rules_for(table)
        self._check_columns(table, df, checks)
        checked = self.engine.apply_checks(strip_quality_columns(df), rules)
        specs = tuple(CheckSpec(rule.name, rule.criticality) for rule in rules)
        return CheckedFrame(checked, table.on_error, specs)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from databricks.labs.dqx.engine import DQEngine
            from databricks.sdk import WorkspaceClient

            # DQX's constructor calls the workspace; locally nothing is there to call.
            workspace = WorkspaceClient() if on_databricks() else create_autospec(WorkspaceClient, instance=True)
            self._engine = DQEngine(workspace, spark=self.spark)
        return self._engine

    def _rules_for(self, table: TableConfig) -> tuple[list[Any], list[dict[str, Any]]]:
        if table.name not in self._rules:
            from databricks.labs.dqx.checks_serializer import deserialize_checks

            checks = table_checks(self.config, table)
            rules = deserialize_checks(checks)  # builds Spark Columns: needs the session
            duplicates = sorted({r.name for r in rules if [x.name for x in rules].count(r.name) > 1})
            if duplicates:
                raise RunError(Problem(
                    f"several checks are named {', '.join(map(repr, duplicates))}", file=str(self.config.path),
                    table=table.name, key="expectations",
                    hint="give each check a distinct `name` so its failures can be told apart"))
            self._rules[table.name] = (rules, checks)
        return self._rules[table.name]

    def _check_columns(self, table: TableConfig, df: DataFrame, checks: list[dict[str, Any]]) -> None:
        """Columns a check names but the table lacks are reported before anything is written."""
        present = set(df.columns)
        problems = [
            Problem(f"{label} names column '{column}', which the table does not have",
                    file=str(self.config.path), table=table.name, key="expectations",
                    hint=f"columns: {', '.join(df.columns)}")
            for label, columns in referenced_columns(checks).items()
            for column in sorted(columns - present)]
        if problems:
            raise RunError(problems)


def strip_quality_columns(df: DataFrame) -> DataFrame:
    """Upstream tables carry `_warnings`; transformations and checks downstream see business columns."""
    present = [c for c in RESULT_COLUMNS if c in df.columns]
    return df.drop(*present) if present else df
