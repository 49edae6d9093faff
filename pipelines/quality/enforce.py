"""Applying a table's DQX checks: one evaluation per row, results as columns, metrics as aggregates.

`Expectations.apply` returns a CheckedFrame: the input plus DQX's `_errors`/`_warnings` columns and
the aggregate expressions that count, during the same write, how many rows each check failed.
The storage layer decides how to write it (one pass: main + quarantine from a single computation).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from unittest.mock import create_autospec

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.catalog.session import on_databricks

from .checks import referenced_columns, table_checks
from .native import native_expectations

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
            names = F.col(ERRORS if check.criticality == "error" else WARNINGS)["name"]
            # array_contains, not a lambda: lambdas are interpreted row by row (bench/dq_overhead.py)
            failed = F.coalesce(F.array_contains(names, check.name), F.lit(False))
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

    def apply(self, table: TableConfig, df: DataFrame, analyze: bool = True) -> CheckedFrame | None:
        """The checked frame, or None for a table without checks.

        `analyze=False` builds it without looking at the DataFrame's schema, as a pipeline query
        function must (LDP/SDP refuse analysis there): columns a check names are then resolved by the
        pipeline itself, which fails the update naming the column, instead of DQX skipping the check.
        """
        if not table.has_expectations:
            return None
        rules, checks = self._rules_for(table)
        if analyze:
            self._check_columns(table, df, checks)
        df = strip_quality_columns(df)
        if all(_is_row_rule(r) for r in rules):
            checked = self._apply_row_rules(table, df, rules, analyze)
        elif analyze:
            checked = self.engine.apply_checks(df, rules)
        else:
            raise RunError(Problem(
                "dataset-level checks (e.g. is_unique, aggregates) cannot run inside a pipeline query "
                "function", file=str(self.config.path), table=table.name, key="expectations",
                hint="use row-level checks for tables registered as pipeline datasets, or --runner spark"))
        specs = tuple(CheckSpec(rule.name, rule.criticality) for rule in rules)
        return CheckedFrame(checked, table.on_error, specs)

    def _apply_row_rules(self, table: TableConfig, df: DataFrame, rules: list[Any], analyze: bool = True
                         ) -> DataFrame:
        """DQX's own per-check result (name, message, filter) for each rule, assembled into
        `_errors`/`_warnings` only for rows where some check failed.

        DQX builds and compacts the result arrays for every row, twice per column; with a few percent
        failing rows, this halves the cost of checking (bench/dq_overhead.py). Same values, same schema.
        DQX also resolves every check column and filter in an analysis of its own, and skips a check
        that does not resolve (quarantining every row as "skipped"); here the checked frame is analyzed
        once, and a check that does not resolve fails the table, naming the check.
        """
        from databricks.labs.dqx.schema import dq_result_schema
        from pyspark.errors import AnalysisException

        conditions = {rule.name: self._condition(table, df, rule) for rule in rules}
        columns = []
        for criticality, name in (("error", ERRORS), ("warn", WARNINGS)):
            failed = [conditions[rule.name] for rule in rules if rule.criticality == criticality]
            empty = F.lit(None).cast(dq_result_schema)
            if failed:
                any_failed = functools.reduce(lambda a, b: a | b, [r.isNotNull() for r in failed])
                columns.append(F.when(any_failed, F.array_compact(F.array(*failed))).otherwise(empty).alias(name))
            else:
                columns.append(empty.alias(name))
        if not analyze:
            return df.select("*", *columns)
        try:
            checked = df.select("*", *columns)
            checked.schema  # a classic session analyzed it in select already; Spark Connect does it here
            return checked
        except AnalysisException:
            raise RunError(self._unresolved(table, df, conditions)) from None

    def _condition(self, table: TableConfig, df: DataFrame, rule: Any) -> Column:
        """The rule's DQX result column: its result struct where the check failed, else null."""
        from databricks.labs.dqx.manager import DQRuleManager

        core = self.engine._engine  # the DQEngineCore holding run_id and run metadata
        manager = DQRuleManager(
            check=rule, df=df, spark=self.spark, run_id=core.run_id,
            engine_user_metadata=core.engine_user_metadata, run_time_overwrite=core.run_time_overwrite,
            ref_dfs=None, suppress_skipped=core.suppress_skipped, rule_fingerprint=rule.rule_fingerprint,
            rule_set_fingerprint=None, input_df=df, reference_cache={})
        if manager.has_unsafe_filter:  # DQX's guard against destructive SQL, no analysis needed
            raise RunError(self._check_problem(table, rule.name, f"unsafe filter {rule.filter!r}"))
        manager.__dict__["skip_message"] = ""  # no analysis per check: the checked frame is analyzed once
        return manager.process(df).condition

    def _unresolved(self, table: TableConfig, df: DataFrame, conditions: dict[str, Column]) -> list[Problem]:
        """The checks that do not resolve on `df`, each with Spark's reason (the failure path only)."""
        from pyspark.errors import AnalysisException

        problems = []
        for name, condition in conditions.items():
            try:
                df.select(condition).schema
            except AnalysisException as error:
                problems.append(self._check_problem(table, name, str(error).strip().splitlines()[0]))
        return problems or [self._check_problem(table, ", ".join(conditions), "the checks do not resolve together")]

    def _check_problem(self, table: TableConfig, check: str, reason: str) -> Problem:
        return Problem(f"check '{check}' cannot be evaluated: {reason}", file=str(self.config.path),
                       table=table.name, key="expectations",
                       hint="fix the check's expression, filter or columns (`ldp_engine validate` checks the rest)")

    def native(self, table: TableConfig) -> dict[str, dict[str, str]]:
        """The table's SQL-expressible checks, for native expectations: {criticality: {name: sql}}."""
        from databricks.labs.dqx.checks_serializer import deserialize_checks

        if not table.has_expectations:
            return {"error": {}, "warn": {}}
        checks = [c for c in table_checks(self.config, table) if not (c.get("check") or {}).get("for_each_column")]
        names = [deserialize_checks([check])[0].name for check in checks]  # DQX's name when none is set
        return native_expectations(checks, names)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from databricks.labs.dqx.engine import DQEngine

            self._engine = DQEngine(workspace_client(), spark=self.spark)
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


def workspace_client() -> Any:
    """DQX's engine, profiler and generator call the workspace when constructed; locally nothing is
    there to call, so they get an autospec'd client (a real one on Databricks)."""
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient() if on_databricks() else create_autospec(WorkspaceClient, instance=True)


def _is_row_rule(rule: Any) -> bool:
    from databricks.labs.dqx.rule import DQRowRule

    return isinstance(rule, DQRowRule)


def quarantine_config(table: TableConfig) -> TableConfig:
    """The `{table}_quarantine` table: same partitioning, its own comment, no properties."""
    return table.model_copy(update={
        "name": f"{table.name}_quarantine", "table_properties": {},
        "comment": f"Rows of {table.name} that failed an error-level check, with _errors and _warnings."})


def without_columns(df: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """`df` minus the named columns, if present, without analyzing it: pipeline query functions may
    not analyze, and Spark Connect resolves `drop` eagerly; a column regex is resolved lazily."""
    alternatives = "|".join(re.escape(name) for name in names)
    return df.select(df.colRegex(f"`^(?!({alternatives})$).+$`"))


def strip_quality_columns(df: DataFrame) -> DataFrame:
    """Upstream tables carry `_warnings`; transformations and checks downstream see business columns."""
    return without_columns(df, RESULT_COLUMNS)
