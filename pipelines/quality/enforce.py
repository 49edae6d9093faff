"""Applying a table's DQX checks: one evaluation per row, results as columns, metrics as aggregates.

`Expectations.apply` returns a CheckedFrame: the input plus DQX's `_errors`/`_warnings` columns and
the aggregate expressions that count, during the same write, how many rows each check failed.
`materialize.Materializer` decides where its rows go (one pass: main + quarantine from a single
computation). DQX's internals are used only through `dqx_adapter`.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.sources import without_columns
from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.results import CheckResult
from pipelines.core.vocabulary import ERRORS, QUARANTINE_SUFFIX, RESULT_COLUMNS, WARNINGS, Criticality, OnError

from . import dqx_adapter
from .checks import referenced_columns, table_checks
from .malformed import MALFORMED_CHECK, checks_malformed_records, engine_run_id, flag_malformed, native_expectation
from .native import native_expectations

__all__ = ["ERRORS", "WARNINGS", "RESULT_COLUMNS", "CheckSpec", "CheckedFrame", "Expectations",
           "QualityStats", "quarantine_config", "strip_quality_columns", "without_columns"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    criticality: Criticality


@dataclass
class QualityStats:
    """What the checks found in one write."""

    rows_quarantined: int = 0
    rows_dropped: int = 0
    checks: list[CheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class CheckedFrame:
    df: DataFrame  # the input plus _errors and _warnings
    on_error: OnError
    checks: tuple[CheckSpec, ...]
    ERROR_ROWS: ClassVar[str] = "dq_error_rows"  # the metric: rows failing any error-level check

    @property
    def has_errors(self) -> Column:
        return F.col(ERRORS).isNotNull()

    def metrics(self) -> list[Column]:
        """Aggregates for Observation: rows with errors, and rows failing each check."""
        columns = [F.count_if(self.has_errors).alias(self.ERROR_ROWS)]
        for index, check in enumerate(self.checks):
            names = F.col(ERRORS if check.criticality is Criticality.ERROR else WARNINGS)["name"]
            # array_contains, not a lambda: lambdas are interpreted row by row (bench/dq_overhead.py)
            failed = F.coalesce(F.array_contains(names, check.name), F.lit(False))
            columns.append(F.count_if(failed).alias(f"dq_check_{index}"))
        return columns

    def stats(self, observed: dict[str, Any]) -> QualityStats:
        error_rows = int(observed.get(self.ERROR_ROWS, 0))
        return QualityStats(
            rows_quarantined=error_rows if self.on_error is OnError.QUARANTINE else 0,
            rows_dropped=error_rows if self.on_error is OnError.DROP else 0,
            checks=[CheckResult(c.name, c.criticality, int(observed.get(f"dq_check_{i}", 0)))
                    for i, c in enumerate(self.checks)])


class Expectations:
    """Applies the checks declared in a config; builds the DQX engine lazily, once (runner threads
    share it: the lazy caches are filled under a lock)."""

    def __init__(self, spark: SparkSession, config: Config):
        self.spark = spark
        self.config = config
        self._engine: Any = None
        self._conditions: dqx_adapter.RuleConditions | None = None
        self._rules: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
        self._lock = threading.RLock()

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
        if all(dqx_adapter.is_row_rule(r) for r in rules) and dqx_adapter.internals_supported():
            checked = self._apply_row_rules(table, df, rules, analyze)
        elif analyze or all(dqx_adapter.is_row_rule(r) for r in rules):
            checked = self.engine.apply_checks(df, rules)
        else:
            raise RunError(Problem(
                "dataset-level checks (e.g. is_unique, aggregates) cannot run inside a pipeline query "
                "function", file=str(self.config.path), table=table.name, key="expectations",
                hint="use row-level checks for tables registered as pipeline datasets, or --runner spark"))
        specs = tuple(CheckSpec(rule.name, Criticality(rule.criticality)) for rule in rules)
        if checks_malformed_records(table):
            checked = flag_malformed(table, checked, engine_run_id(self.engine), str(self.config.path), analyze)
            specs += (CheckSpec(MALFORMED_CHECK, Criticality.ERROR),)
        return CheckedFrame(checked, OnError(table.on_error), specs)

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
        from pyspark.errors import AnalysisException

        rule_set = dqx_adapter.rule_set_fingerprint(rules)
        conditions = {rule.name: self._condition(table, df, rule, rule_set) for rule in rules}
        columns = []
        for criticality, name in ((Criticality.ERROR, ERRORS), (Criticality.WARN, WARNINGS)):
            failed = [conditions[rule.name] for rule in rules if rule.criticality == criticality]
            empty = F.lit(None).cast(dqx_adapter.result_schema())
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

    def _condition(self, table: TableConfig, df: DataFrame, rule: Any, rule_set: str | None) -> Column:
        """The rule's DQX result column: its result struct where the check failed, else null."""
        conditions = self.conditions
        if conditions.has_unsafe_filter(rule, df):  # DQX's guard against destructive SQL, no analysis
            raise RunError(self._check_problem(table, rule.name, f"unsafe filter {rule.filter!r}"))
        return conditions.condition(rule, df, rule_set)

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

    def native(self, table: TableConfig) -> dict[Criticality, dict[str, str]]:
        """The table's SQL-expressible checks, for native expectations: {criticality: {name: sql}}."""
        if not table.has_expectations:
            return {level: {} for level in Criticality}
        checks = [c for c in table_checks(self.config, table) if not (c.get("check") or {}).get("for_each_column")]
        names = [dqx_adapter.deserialize([check])[0].name for check in checks]  # DQX's name when none is set
        native = native_expectations(checks, names)
        if checks_malformed_records(table):
            native[Criticality.ERROR] = {**native[Criticality.ERROR], **native_expectation()}
        return native

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = dqx_adapter.new_engine(self.spark)
            return self._engine

    @property
    def conditions(self) -> dqx_adapter.RuleConditions:
        with self._lock:
            if self._conditions is None:
                self._conditions = dqx_adapter.RuleConditions(self.engine, self.spark)
            return self._conditions

    def _rules_for(self, table: TableConfig) -> tuple[list[Any], list[dict[str, Any]]]:
        with self._lock:
            return self._rules[table.name] if table.name in self._rules else self._load_rules(table)

    def _load_rules(self, table: TableConfig) -> tuple[list[Any], list[dict[str, Any]]]:
        if table.name not in self._rules:
            checks = table_checks(self.config, table)
            rules = dqx_adapter.deserialize(checks)  # builds Spark Columns: needs the session
            names = [r.name for r in rules] + ([MALFORMED_CHECK] if checks_malformed_records(table) else [])
            duplicates = sorted({name for name in names if names.count(name) > 1})
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


def quarantine_config(table: TableConfig) -> TableConfig:
    """The `{table}_quarantine` table: same partitioning, its own comment, no properties."""
    return table.model_copy(update={
        "name": table.name + QUARANTINE_SUFFIX, "table_properties": {},
        "comment": f"Rows of {table.name} that failed an error-level check, with _errors and _warnings."})


def strip_quality_columns(df: DataFrame) -> DataFrame:
    """Upstream tables carry `_warnings`; transformations and checks downstream see business columns."""
    return without_columns(df, RESULT_COLUMNS)
