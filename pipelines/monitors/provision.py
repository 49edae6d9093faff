"""The declared monitors, provisioned on Databricks data profiling (`w.data_quality`): plan, apply,
coverage. Never deletes: a monitor the config no longer declares is reported by coverage, not removed
(deleting one leaves its metric tables and dashboard behind anyway).

API facts this relies on (databricks-sdk, `service.dataquality`): a monitor is addressed by object
type `table` and the table's UUID; `list_monitor` is unimplemented, so coverage asks `get_monitor`
per table, and only `NotFound` means "not monitored" (an auth or rate-limit error is an error).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service import dataquality as dq

from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.monitoring import MonitorConfig

OBJECT_TYPE = "table"
_RAISE = object()
MANAGED_FIELDS = ("output_schema_id", "snapshot", "time_series", "inference_log", "slicing_exprs",
                  "baseline_table_name", "schedule", "notification_settings")


@dataclass(frozen=True)
class Change:
    """What `apply` would do to one table's monitor."""

    table: str  # catalog.schema.table
    action: Literal["create", "update", "unchanged", "orphan", "no-table"]
    object_id: str | None
    monitor: dq.Monitor | None  # the wanted monitor (None for an orphan or a table not created yet)
    fields: tuple[str, ...] = ()  # updated fields of data_profiling_config

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "action": self.action, "fields": list(self.fields)}


@dataclass
class Coverage:
    monitored: list[str] = field(default_factory=list)
    unmonitored: list[str] = field(default_factory=list)  # declared or required but absent
    stale: dict[str, str] = field(default_factory=dict)  # table -> why (last success too old, never, ...)
    orphans: list[str] = field(default_factory=list)  # metric tables whose source table is gone
    errors: dict[str, str] = field(default_factory=dict)  # table -> the API's error (not "unmonitored")

    def to_dict(self) -> dict[str, Any]:
        return {"monitored": self.monitored, "unmonitored": self.unmonitored, "stale": self.stale,
                "orphans": self.orphans, "errors": self.errors}

    @property
    def complete(self) -> bool:
        return not (self.unmonitored or self.stale or self.orphans or self.errors)


class Provisioner:
    """Monitors of the selected tables of one pipeline, in `catalog`."""

    def __init__(self, w: WorkspaceClient, config: Config, catalog: str, tables: Iterable[TableConfig] | None = None):
        self.w = w
        self.config = config
        self.catalog = catalog
        self.tables = list(config.tables if tables is None else tables)

    def full_name(self, name: str) -> str:
        return self.config.full_name(name, self.catalog)

    def check_workspace(self) -> list[Problem]:
        """Each monitored table exists with the columns its monitor names, and so does its baseline."""
        problems = []
        for table in self.tables:
            if table.monitor is None:
                continue
            info = self._table(table.name)
            if info is None:
                problems.append(Problem(f"{self.full_name(table.name)} does not exist in the workspace",
                                        table=table.name, key="monitor", hint="run the pipeline first"))
                continue
            columns = [c.name for c in info.columns or []]
            for key, column in table.monitor.columns_named().items():
                if column not in columns:
                    problems.append(Problem(f"the table has no column '{column}'", table=table.name,
                                            key=f"monitor.{key}", value=column, hint=f"columns: {', '.join(columns)}"))
            baseline = self._baseline_name(table.monitor)
            if baseline and self._call(table.name, self.w.tables.get, baseline, missing=None) is None:
                problems.append(Problem(f"the baseline table {baseline} does not exist", table=table.name,
                                        key="monitor.baseline_table", value=table.monitor.baseline_table))
        return problems

    def plan(self) -> list[Change]:
        """Per selected table: create, update (with the fields that differ) or unchanged for declared
        monitors; `orphan` for a monitor on a table that no longer declares one; `no-table` for a
        monitored table not created yet. Mutates nothing."""
        output_schema_id = self.w.schemas.get(f"{self.catalog}.{self.config.monitoring_schema}").schema_id
        changes = []
        for table in self.tables:
            full_name = self.full_name(table.name)
            info = self._table(table.name)
            if info is None:
                if table.monitor is not None:
                    changes.append(Change(full_name, "no-table", None, None))
                continue
            object_id = str(info.table_id)
            current = self._call(table.name, self.w.data_quality.get_monitor, OBJECT_TYPE, object_id, missing=None)
            if table.monitor is None:
                if current is not None:
                    changes.append(Change(full_name, "orphan", object_id, None))
                continue
            wanted = dq.Monitor(object_type=OBJECT_TYPE, object_id=object_id,
                                data_profiling_config=self.profiling_config(table, output_schema_id))
            if current is None:
                changes.append(Change(full_name, "create", object_id, wanted))
                continue
            differ = _differences(current.data_profiling_config, wanted.data_profiling_config)
            changes.append(Change(full_name, "update" if differ else "unchanged", object_id, wanted, differ))
        return changes

    def apply(self, changes: list[Change], refresh: bool = False, delete_orphans: bool = False) -> None:
        for change in changes:
            name = change.table.rpartition(".")[2]
            if change.action == "create":
                self._call(name, self.w.data_quality.create_monitor, change.monitor)
            elif change.action == "update":
                mask = ",".join(f"data_profiling_config.{field_}" for field_ in change.fields)
                self._call(name, self.w.data_quality.update_monitor, OBJECT_TYPE, change.object_id, change.monitor,
                           mask)
            elif change.action == "orphan" and delete_orphans:
                self._call(name, self.w.data_quality.delete_monitor, OBJECT_TYPE, change.object_id)
            if refresh and change.action in ("create", "update", "unchanged"):
                self._call(name, self.w.data_quality.create_refresh, OBJECT_TYPE, change.object_id,
                           dq.Refresh(object_type=OBJECT_TYPE, object_id=str(change.object_id)))

    def _table(self, name: str) -> Any:
        """The table's Unity Catalog entry, None if it does not exist."""
        return self._call(name, self.w.tables.get, self.full_name(name), missing=None)

    def _call(self, table: str, method: Any, *args: Any, missing: Any = _RAISE) -> Any:
        """One workspace request for `table`: `NotFound` is `missing` where that means "absent"; any
        other error (auth, rate limit, ...) stops the command naming the table (exit 3)."""
        try:
            return method(*args)
        except NotFound:
            if missing is _RAISE:
                raise
            return missing
        except DatabricksError as exc:
            raise RunError(Problem(f"{type(exc).__name__}: {exc}", table=table,
                                   hint="nothing after this request was sent")) from None

    def _baseline_name(self, monitor: MonitorConfig) -> str | None:
        baseline = monitor.baseline_table
        return self.full_name(baseline) if baseline and baseline in self.config.by_name else baseline

    def profiling_config(self, table: TableConfig, output_schema_id: str) -> dq.DataProfilingConfig:
        monitor: MonitorConfig = table.monitor  # type: ignore[assignment]
        granularities = [_granularity(g) for g in monitor.granularities]
        baseline = self._baseline_name(monitor)
        profile: dict[str, Any] = {}
        if monitor.profile == "snapshot":
            profile["snapshot"] = dq.SnapshotConfig()
        elif monitor.profile == "timeseries":
            profile["time_series"] = dq.TimeSeriesConfig(timestamp_column=str(monitor.timestamp_col),
                                                         granularities=granularities)
        else:
            profile["inference_log"] = dq.InferenceLogConfig(
                problem_type=dq.InferenceProblemType(f"INFERENCE_PROBLEM_TYPE_{str(monitor.problem_type).upper()}"),
                timestamp_column=str(monitor.timestamp_col), granularities=granularities,
                prediction_column=str(monitor.prediction_col), model_id_column=str(monitor.model_id_col),
                label_column=monitor.label_col)
        return dq.DataProfilingConfig(
            output_schema_id=output_schema_id, baseline_table_name=baseline,
            slicing_exprs=list(monitor.slicing_exprs) or None,
            schedule=dq.CronSchedule(quartz_cron_expression=monitor.schedule, timezone_id="UTC")
            if monitor.schedule else None,
            notification_settings=dq.NotificationSettings(
                on_failure=dq.NotificationDestination(email_addresses=list(monitor.notify)))
            if monitor.notify else None,
            **profile)

    def coverage(self, now: float | None = None) -> Coverage:
        """The selected tables: monitored, declared but not monitored, stale; and metric tables left
        behind by tables that are gone. Errors are per table, never counted as "unmonitored"."""
        now = time.time() if now is None else now
        result = Coverage()
        schema = self.config.pipeline.schema_name
        existing = {t.name for t in self.w.tables.list(catalog_name=self.catalog, schema_name=schema)}
        for table in self.tables:
            full_name = self.full_name(table.name)
            if table.name not in existing:
                if table.monitor is not None:
                    result.unmonitored.append(full_name)
                continue
            try:
                object_id = str(self.w.tables.get(full_name).table_id)
                self.w.data_quality.get_monitor(OBJECT_TYPE, object_id)
                why = self._staleness(object_id, now)
            except NotFound:
                if table.monitor is not None:
                    result.unmonitored.append(full_name)
                continue
            except DatabricksError as exc:  # auth, rate limit...: an error, never "unmonitored"
                result.errors[full_name] = f"{type(exc).__name__}: {exc}"
                continue
            result.monitored.append(full_name)
            if why:
                result.stale[full_name] = why
        metric_tables = self.w.tables.list(catalog_name=self.catalog, schema_name=self.config.monitoring_schema)
        for metric_table in metric_tables:
            source = metric_table.name.removesuffix("_profile_metrics")
            if source != metric_table.name and source not in existing:
                result.orphans.append(f"{self.catalog}.{self.config.monitoring_schema}.{metric_table.name}")
        return result

    def _staleness(self, object_id: str, now: float) -> str | None:
        stale_days = self.config.monitoring.stale_days
        succeeded = [r.end_time_ms or r.start_time_ms or 0 for r in self.w.data_quality.list_refresh(OBJECT_TYPE, object_id)
                     if r.state == dq.RefreshState.MONITOR_REFRESH_STATE_SUCCESS]
        if not succeeded:
            return "never refreshed successfully"
        age_days = (now - max(succeeded) / 1000) / 86_400
        return f"last successful refresh {age_days:.0f} days ago (stale_days: {stale_days})" \
            if age_days > stale_days else None


def _granularity(text: str) -> dq.AggregationGranularity:
    return dq.AggregationGranularity(f"AGGREGATION_GRANULARITY_{text.upper().replace(' ', '_')}")


def _differences(current: dq.DataProfilingConfig | None, wanted: dq.DataProfilingConfig) -> tuple[str, ...]:
    """The managed fields whose request form differs (read-only fields such as status are ignored)."""
    now = current.as_dict() if current is not None else {}
    then = wanted.as_dict()
    if current is not None and current.schedule is not None:  # pause_status is read-only
        now["schedule"] = {k: v for k, v in now["schedule"].items() if k != "pause_status"}
    return tuple(name for name in MANAGED_FIELDS if now.get(name) != then.get(name))
