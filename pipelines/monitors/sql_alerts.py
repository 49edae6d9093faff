"""Monitor alerts as Databricks SQL alerts, routed by monitor group, and one view per group over its
tables' metrics: what `monitors plan` shows and `monitors apply` does beside the monitors.

An alert with `databricks: true` becomes an alert (`w.alerts_v2`, the API behind the bundle's `alerts`
resource) whose query reads the newest unsliced window of the monitor's metric table for its column,
evaluated on `monitoring.alert_schedule` on a SQL warehouse and sent to its group's `notify` list (an
address with "@" is a user e-mail, anything else a notification destination id). Its description
carries the owner, the runbook and the table's lineage page. An alert is known by its display name,
`ldp CATALOG.SCHEMA.TABLE: METRIC(COLUMN) OP`, so a new threshold updates it in place.

Each group gets `{group}_profile_metrics` and `{group}_drift_metrics` views in the monitoring schema:
every member table's metric rows with a `table_name` column, one query surface per team.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import sql as dbsql

from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import Problem, UsageError
from pipelines.core.monitoring import Alert, MonitorConfig
from pipelines.core.sql import sql_identifier, sql_literal

from .profile import DRIFT_SCHEMA, PROFILE_SCHEMA

NAME_PREFIX = "ldp "
OPERATORS = {">": dbsql.ComparisonOperator.GREATER_THAN, ">=": dbsql.ComparisonOperator.GREATER_THAN_OR_EQUAL,
             "<": dbsql.ComparisonOperator.LESS_THAN, "<=": dbsql.ComparisonOperator.LESS_THAN_OR_EQUAL,
             "==": dbsql.ComparisonOperator.EQUAL, "!=": dbsql.ComparisonOperator.NOT_EQUAL}


@dataclass(frozen=True)
class AlertChange:
    """What `apply` would do to one Databricks SQL alert, or to one group's views."""

    table: str  # catalog.schema.table, or the group's views' schema for a view
    name: str  # the alert's display name, or the view's name
    action: Literal["create", "update", "unchanged", "orphan", "replace"]
    alert: dbsql.AlertV2 | None = None  # the wanted alert (None for an orphan or a view)
    id: str | None = None  # the existing alert's id
    fields: tuple[str, ...] = ()
    statement: str | None = None  # a view's CREATE OR REPLACE VIEW

    def to_dict(self) -> dict[str, Any]:
        kind = "view" if self.statement else "alert"
        return {"table": self.table, "action": self.action, kind: self.name, "fields": list(self.fields)}


def declared(alert: dbsql.AlertV2) -> dict[str, Any]:
    """The parts of an alert this engine declares, keyed by the update mask's field names (so a
    difference is the mask itself): what the workspace adds (evaluation state, last evaluation, pause
    status, retrigger settings) is not a difference."""
    evaluation, schedule = alert.evaluation, alert.schedule
    threshold = evaluation.threshold.value if evaluation and evaluation.threshold else None
    subscriptions = (evaluation.notification.subscriptions or []) if evaluation and evaluation.notification else []
    return {
        "query_text": alert.query_text, "warehouse_id": alert.warehouse_id,
        "custom_description": alert.custom_description,
        "evaluation": evaluation and (evaluation.source.name if evaluation.source else None,
                                      evaluation.comparison_operator, threshold and threshold.double_value,
                                      sorted((s.user_email or "", s.destination_id or "") for s in subscriptions)),
        "schedule": schedule and (schedule.quartz_cron_schedule, schedule.timezone_id),
    }


class AlertProvisioner:
    """The selected tables' Databricks SQL alerts and their groups' views, in `catalog`."""

    def __init__(self, w: WorkspaceClient, config: Config, catalog: str, tables: Iterable[TableConfig],
                 warehouse_id: str | None):
        self.w, self.config, self.catalog, self.warehouse_id = w, config, catalog, warehouse_id
        self.tables = list(tables)

    def plan(self) -> list[AlertChange]:
        """Per declared Databricks alert of the selected tables: create, update (naming the fields that
        differ) or unchanged; `orphan` for an engine-made alert of theirs no longer declared, whether or
        not the table still has a monitor; then each of their groups' views (`replace`: a view is cheap
        to recreate). A config without `monitoring.groups` makes no alerts and asks nothing. Mutates
        nothing."""
        if not self.config.monitoring.groups:
            return []
        existing = {a.display_name: a for a in self.w.alerts_v2.list_alerts()
                    if (a.display_name or "").startswith(NAME_PREFIX)}
        changes = []
        for table in self.tables:
            full_name = self.config.full_name(table.name, self.catalog)
            wanted = {alert.display_name: alert for alert in self.alerts(table)}
            for name, alert in wanted.items():
                current = existing.get(name)
                if current is None:
                    changes.append(AlertChange(full_name, name, "create", alert))
                    continue
                have, want = declared(current), declared(alert)
                differ = tuple(field for field in want if have[field] != want[field])
                changes.append(AlertChange(full_name, name, "update" if differ else "unchanged", alert,
                                           current.id, differ))
            changes += [AlertChange(full_name, name, "orphan", None, alert.id)
                        for name, alert in sorted(existing.items())
                        if name.startswith(f"{NAME_PREFIX}{full_name}: ") and name not in wanted]
        groups = sorted({t.monitor.group for t in self.tables if t.monitor and t.monitor.group})
        for group in groups:
            changes += [AlertChange(f"{self.catalog}.{self.config.monitoring_schema}", view, "replace",
                                    statement=statement) for view, statement in self.views(group).items()]
        return changes

    def apply(self, changes: list[AlertChange], delete_orphans: bool = False) -> None:
        for change in changes:
            if change.action == "create":
                self.w.alerts_v2.create_alert(change.alert)
            elif change.action == "update":
                self.w.alerts_v2.update_alert(change.id, change.alert, ",".join(change.fields))
            elif change.action == "orphan" and delete_orphans:
                self.w.alerts_v2.trash_alert(change.id)
            elif change.action == "replace":
                self.w.statement_execution.execute_statement(change.statement, self._warehouse(),
                                                             wait_timeout="50s")

    def alerts(self, table: TableConfig) -> list[dbsql.AlertV2]:
        """The Databricks SQL alerts the table's monitor declares (`databricks: true`)."""
        monitor = table.monitor
        if monitor is None or monitor.group is None:
            return []
        group = self.config.monitoring.groups[monitor.group]
        notification = dbsql.AlertV2Notification(subscriptions=[
            dbsql.AlertV2Subscription(user_email=to) if "@" in to else dbsql.AlertV2Subscription(destination_id=to)
            for to in group.notify])
        description, full_name = self._description(table, monitor), self.config.full_name(table.name, self.catalog)
        return [dbsql.AlertV2(
            display_name=f"{NAME_PREFIX}{full_name}: {alert.metric}({alert.column}) {alert.op}",
            query_text=self._query(table.name, monitor, alert), warehouse_id=self._warehouse(),
            evaluation=dbsql.AlertV2Evaluation(
                source=dbsql.AlertV2OperandColumn(name="value"), comparison_operator=OPERATORS[alert.op],
                threshold=dbsql.AlertV2Operand(value=dbsql.AlertV2OperandValue(double_value=alert.threshold)),
                notification=notification),
            schedule=dbsql.CronSchedule(quartz_cron_schedule=self.config.monitoring.alert_schedule, timezone_id="UTC"),
            custom_description=description) for alert in monitor.alerts if alert.databricks]

    def views(self, group: str) -> dict[str, str]:
        """{view: its CREATE OR REPLACE VIEW} of a group: every table of the config in the group."""
        members = [t.name for t in self.config.tables if t.monitor is not None and t.monitor.group == group]
        schema = f"{sql_identifier(self.catalog)}.{sql_identifier(self.config.monitoring_schema)}"
        views = {}
        for kind, columns in (("profile", PROFILE_SCHEMA.fieldNames()), ("drift", DRIFT_SCHEMA.fieldNames())):
            selects = " UNION ALL ".join(
                f"SELECT {sql_literal(name)} AS table_name, {', '.join(map(sql_identifier, columns))} "
                f"FROM {schema}.{sql_identifier(f'{name}_{kind}_metrics')}" for name in members)
            views[f"{group}_{kind}_metrics"] = (f"CREATE OR REPLACE VIEW {schema}.{sql_identifier(f'{group}_{kind}_metrics')}"
                                                f" AS {selects}")
        return views

    def _query(self, table: str, monitor: MonitorConfig, alert: Alert) -> str:
        """The newest unsliced window's value of the alert's metric for its column."""
        kind = "drift" if alert.is_drift else "profile"
        metric = ".".join(sql_identifier(part) for part in alert.metric.split("."))
        where = ["column_name = " + sql_literal(alert.column), "slice_key IS NULL"]
        if alert.is_drift:
            where.append("drift_type = " + sql_literal("BASELINE" if monitor.baseline_table else "CONSECUTIVE"))
        else:
            where.append("log_type = 'INPUT'")
        source = ".".join(sql_identifier(part) for part in (self.catalog, self.config.monitoring_schema,
                                                             f"{table}_{kind}_metrics"))
        return (f"SELECT {metric} AS value FROM {source} WHERE {' AND '.join(where)} "
                "ORDER BY `window`.`start` DESC LIMIT 1")

    def _description(self, table: TableConfig, monitor: MonitorConfig) -> str:
        group = self.config.monitoring.groups[monitor.group or ""]
        schema = self.config.pipeline.schema_name
        lineage = (f"{(self.w.config.host or '').rstrip('/')}/explore/data/{self.catalog}/{schema}/{table.name}"
                   "?activeTab=lineage")
        return "\n".join([f"Table: {self.config.full_name(table.name, self.catalog)} (monitor group {monitor.group})",
                          f"Owner: {monitor.owner or group.owner or 'unknown'}",
                          f"Runbook: {monitor.runbook_url or group.runbook_url or 'none'}",
                          f"Lineage: {lineage}"])

    def _warehouse(self) -> str:
        if not self.warehouse_id:
            raise UsageError(Problem("Databricks SQL alerts and group views run on a SQL warehouse",
                                     key="--warehouse-id", hint="pass --warehouse-id (the bundle's ${var.warehouse_id})"))
        return self.warehouse_id
