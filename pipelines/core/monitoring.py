"""Profiling monitors as config: a table's `monitor:` block and the pipeline's `monitoring:` block.

The vocabulary (profile types, granularities, metric names, alert operators) follows Databricks data
profiling, so a monitor declared here can be provisioned there unchanged and its local metric tables
read by the same SQL. Cross-key rules (a profile type without its columns, policy violations) are
checked after parsing by `monitor_problems`, each naming the table and key at fault.
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import Problem

ProfileType = Literal["snapshot", "timeseries", "inference"]
GRANULARITIES = ("5 minutes", "30 minutes", "1 hour", "1 day", "1 week", "2 weeks", "3 weeks", "4 weeks",
                 "1 month", "1 year")

# Metrics an alert may name: the profile's per-column numbers and the drift's, under Databricks' names.
PROFILE_METRICS = ("count", "num_nulls", "percent_null", "num_zeros", "percent_zeros", "num_nan", "percent_nan",
                   "min", "max", "avg", "stddev", "median", "distinct_count", "percent_distinct", "min_length",
                   "avg_length", "max_length")
MODEL_METRICS = ("accuracy_score", "precision.macro", "precision.weighted", "recall.macro", "recall.weighted",
                 "f1_score.macro", "f1_score.weighted", "mean_squared_error", "root_mean_squared_error",
                 "mean_average_error", "mean_absolute_percentage_error", "r2_score")  # inference, on `:table`
DRIFT_METRICS = ("count_delta", "avg_delta", "percent_null_delta", "percent_zeros_delta", "percent_distinct_delta",
                 "non_null_columns_delta.added", "non_null_columns_delta.missing", "js_distance",
                 "ks_test.statistic", "ks_test.pvalue", "chi_squared_test.statistic", "chi_squared_test.pvalue",
                 "tv_distance", "l_infinity_distance", "wasserstein_distance", "population_stability_index")
OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
TABLE_COLUMN = ":table"  # Databricks' column_name of the table-level rows


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alert(_Model):
    """A threshold on one metric of one column (`:table` for table rows), checked after each profile."""

    metric: str
    column: str = Field(min_length=1)
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    databricks: bool = False  # also a Databricks SQL alert over the metric tables (`monitors apply`)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in PROFILE_METRICS + MODEL_METRICS + DRIFT_METRICS:
            fields = [m for m in MODEL_METRICS + DRIFT_METRICS if m.startswith(value + ".")]
            if fields:
                raise ValueError(f"{value!r} is a struct; name one of its fields: {', '.join(fields)}")
            raise ValueError(f"unknown metric {value!r}; profile metrics: {', '.join(PROFILE_METRICS)}; "
                             f"model metrics (inference): {', '.join(MODEL_METRICS)}; "
                             f"drift metrics: {', '.join(DRIFT_METRICS)}")
        return value

    @property
    def is_drift(self) -> bool:
        return self.metric in DRIFT_METRICS

    def fires(self, value: Any) -> bool:
        return value is not None and OPERATORS[self.op](float(value), self.threshold)


class MonitorConfig(_Model):
    """One table's monitor (Databricks: one data-profiling monitor per table)."""

    profile: ProfileType = "snapshot"
    timestamp_col: str | None = None
    granularities: tuple[str, ...] = ()
    slicing_exprs: tuple[str, ...] = ()
    baseline_table: str | None = None
    prediction_col: str | None = None
    label_col: str | None = None
    model_id_col: str | None = None
    problem_type: Literal["classification", "regression"] | None = None
    owner: str | None = None
    runbook_url: str | None = None
    group: str | None = None  # a `monitoring.groups` entry: where its Databricks alerts go, its unified views
    alerts: tuple[Alert, ...] = ()
    on_alert: Literal["warn", "fail"] = "warn"
    schedule: str | None = None  # Databricks: quartz cron of the monitor's own refresh
    notify: tuple[str, ...] = Field(default=(), max_length=5)  # e-mails on a failed refresh (Databricks: <= 5)

    @field_validator("granularities")
    @classmethod
    def _known_granularities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for granularity in value:
            if granularity not in GRANULARITIES:
                raise ValueError(f"unknown granularity {granularity!r}; Databricks accepts {', '.join(GRANULARITIES)}")
        if len(set(value)) != len(value):
            raise ValueError("lists a granularity more than once")
        return value

    def columns_named(self) -> dict[str, str]:
        """key -> column for every column this monitor reads from its table."""
        named = {key: getattr(self, key) for key in ("timestamp_col", "prediction_col", "label_col", "model_id_col")}
        named.update({f"alerts[{i}].column": a.column for i, a in enumerate(self.alerts) if a.column != TABLE_COLUMN})
        return {key: column for key, column in named.items() if column}


class MonitoringPolicy(_Model):
    """Rules every monitor of the pipeline must follow (checked by `validate`, before Spark starts)."""

    require_monitor: tuple[str, ...] = ()  # layers or tags whose tables must be monitored
    required: tuple[str, ...] = ()  # monitor keys that must be set, e.g. owner, runbook_url
    naming_patterns: tuple[str, ...] = ()  # a monitored table's name must match one
    forbidden_patterns: tuple[str, ...] = ()  # ... and none of these
    require_baseline: bool = False  # inference monitors need a baseline_table

    @field_validator("required")
    @classmethod
    def _known_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [key for key in value if key not in MonitorConfig.model_fields]
        if unknown:
            raise ValueError(f"names no monitor key: {', '.join(unknown)}")
        return value

    @field_validator("naming_patterns", "forbidden_patterns")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value


class MonitorGroup(_Model):
    """Monitors one team answers for: who their Databricks SQL alerts notify, and one view per group
    over its tables' profile and drift metrics."""

    notify: tuple[str, ...] = Field(min_length=1)  # e-mail addresses, or notification destination ids
    owner: str | None = None  # a member monitor's own owner / runbook_url win
    runbook_url: str | None = None

    @field_validator("notify")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a recipient more than once")
        return value


class MonitoringSettings(_Model):
    """The pipeline's `monitoring:` block."""

    output_schema: str | None = None  # default: {pipeline schema}_monitoring
    defaults: dict[str, Any] = Field(default_factory=dict)  # any monitor key, merged under each monitor
    policy: MonitoringPolicy = Field(default_factory=MonitoringPolicy)
    stale_days: int = Field(default=30, ge=1)  # coverage: a monitor not refreshed for longer is stale
    groups: dict[str, MonitorGroup] = Field(default_factory=dict)
    alert_schedule: str = "0 0 * * * ?"  # quartz cron of the Databricks SQL alerts' evaluation (hourly)

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: dict[str, "MonitorGroup"]) -> dict[str, "MonitorGroup"]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"group {name!r}: a group names views: letters, digits, underscore")
        return value

    @field_validator("output_schema")
    @classmethod
    def _schema_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be a schema name (letters, digits, underscore)")
        return value

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = [key for key in value if key not in MonitorConfig.model_fields]
        if unknown:
            raise ValueError(f"names no monitor key: {', '.join(unknown)}; valid keys: "
                             f"{', '.join(MonitorConfig.model_fields)}")
        return value


def with_defaults(raw: Any) -> Any:
    """config.yml as parsed, with `monitoring.defaults` merged under every table's `monitor:` mapping
    (a table's own keys win; `monitor: {}` takes the defaults only)."""
    monitoring = raw.get("monitoring") if isinstance(raw, dict) else None
    defaults = monitoring.get("defaults") if isinstance(monitoring, dict) else None
    tables = raw.get("tables") if isinstance(raw, dict) else None
    if not isinstance(defaults, dict) or not defaults or not isinstance(tables, list):
        return raw
    merged = [{**table, "monitor": {**defaults, **table["monitor"]}}
              if isinstance(table, dict) and isinstance(table.get("monitor"), dict) else table for table in tables]
    return {**raw, "tables": merged}


_NEEDS = {"timeseries": ("timestamp_col", "granularities"),
          "inference": ("timestamp_col", "granularities", "prediction_col", "model_id_col", "problem_type")}


def monitor_problems(config: Any) -> list[Problem]:
    """Cross-key rules of every monitor and the pipeline's policy, as located problems."""
    policy: MonitoringPolicy = config.monitoring.policy
    file = str(config.path)
    problems: list[Problem] = []
    for index, table in enumerate(config.tables):
        def problem(message: str, key: str, value: Any = None, hint: str | None = None) -> None:
            problems.append(Problem(message, file=file, table=table.name, key=key, value=value, hint=hint,
                                    index=index))

        monitor: MonitorConfig | None = table.monitor
        if monitor is None:
            reasons = [r for r in policy.require_monitor if r == table.layer or r in table.tags]
            if reasons:
                problem(f"must be monitored: the monitoring policy requires a monitor for {reasons[0]!r} tables",
                        "monitor", hint="add a 'monitor:' block (monitor: {} takes monitoring.defaults)")
            continue
        for key in _NEEDS.get(monitor.profile, ()):
            if not getattr(monitor, key):
                problem(f"profile: {monitor.profile} needs '{key}'", f"monitor.{key}")
        if monitor.profile == "snapshot":
            for key in ("timestamp_col", "granularities", "prediction_col", "label_col", "model_id_col",
                        "problem_type"):
                if getattr(monitor, key):
                    problem(f"'{key}' applies to timeseries / inference profiles, not to snapshot",
                            f"monitor.{key}", getattr(monitor, key), hint="set profile: timeseries")
        groups = config.monitoring.groups
        if monitor.group is not None and monitor.group not in groups:
            problem(f"no monitoring group {monitor.group!r}", "monitor.group", monitor.group,
                    hint=f"groups: {', '.join(groups)}" if groups else "declare it under monitoring.groups")
        for number, alert in enumerate(monitor.alerts):
            if alert.databricks and monitor.group is None:
                problem("a Databricks SQL alert needs the monitor's group (who it notifies)",
                        f"monitor.alerts[{number}].databricks", True, hint="set monitor.group")
        if monitor.baseline_table == table.name:
            problem("a table cannot be its own baseline", "monitor.baseline_table", monitor.baseline_table)
        for key in policy.required:
            if getattr(monitor, key) in (None, (), ""):
                problem(f"the monitoring policy requires '{key}'", f"monitor.{key}")
        if policy.naming_patterns and not any(re.search(p, table.name) for p in policy.naming_patterns):
            problem("the table's name matches none of the monitoring policy's naming_patterns", "monitor",
                    table.name, hint=f"patterns: {', '.join(policy.naming_patterns)}")
        for pattern in policy.forbidden_patterns:
            if re.search(pattern, table.name):
                problem(f"the table's name matches the forbidden pattern {pattern!r}", "monitor", table.name)
        if policy.require_baseline and monitor.profile == "inference" and not monitor.baseline_table:
            problem("the monitoring policy requires a baseline_table for inference monitors",
                    "monitor.baseline_table")
    return problems
