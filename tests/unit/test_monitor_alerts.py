"""Monitor groups and their Databricks SQL alerts (`monitors plan | apply`): the exact `w.alerts_v2`
and statement requests, with an autospec'd WorkspaceClient, and the config's located errors."""
from __future__ import annotations

import json
from unittest.mock import call, create_autospec

from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from types import SimpleNamespace
from databricks.sdk.service import dataquality as dq
from databricks.sdk.service import sql as dbsql
from databricks.sdk.service.catalog import ColumnInfo, SchemaInfo, SchemasAPI, TableInfo, TablesAPI

from pipelines.engine import monitors_cli
from pipelines.engine.cli import cli
from pipelines.monitors.profile import DRIFT_SCHEMA, PROFILE_SCHEMA

CONFIG = """
pipeline: {name: retail, catalog: main, schema: retail}
monitoring:
  output_schema: retail_mon
  groups:
    sales: {notify: [sales-oncall@example.com, dest-123], owner: sales-team@example.com,
            runbook_url: "https://wiki.example.com/sales"}
tables:
  - name: orders
    layer: silver
    monitor:
      group: sales
      owner: orders-owner@example.com
      alerts:
        - {metric: percent_null, column: country, op: ">", threshold: 20, databricks: true}
        - {metric: js_distance, column: currency, op: ">=", threshold: 0.3, databricks: true}
        - {metric: count, column: ":table", op: "<", threshold: 1}
  - name: revenue
    layer: gold
    depends_on: [orders]
    monitor: {group: sales}
"""


def workspace(existing: list[dbsql.AlertV2]) -> WorkspaceClient:
    w = create_autospec(WorkspaceClient, instance=True)
    w.config = SimpleNamespace(host="https://adb-1.azuredatabricks.net/")  # the client's resolved host
    w.schemas = create_autospec(SchemasAPI, instance=True)
    w.tables = create_autospec(TablesAPI, instance=True)
    w.data_quality = create_autospec(dq.DataQualityAPI, instance=True)
    w.alerts_v2 = create_autospec(dbsql.AlertsV2API, instance=True)
    w.statement_execution = create_autospec(dbsql.StatementExecutionAPI, instance=True)
    w.schemas.get.return_value = SchemaInfo(schema_id="s-mon", full_name="main.retail_mon")
    w.tables.get.side_effect = lambda name: TableInfo(full_name=name, table_id=f"t-{name}",
                                                      columns=[ColumnInfo(name="country"), ColumnInfo(name="currency")])
    w.data_quality.get_monitor.side_effect = lambda kind, object_id: dq.Monitor(
        object_type="table", object_id=object_id)
    w.alerts_v2.list_alerts.return_value = iter(existing)
    return w


def invoke(monkeypatch, tmp_path, w, *args: str, config: str = CONFIG):
    (tmp_path / "config.yml").write_text(config)
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    return CliRunner().invoke(cli, ["monitors", *args, "--config", str(tmp_path / "config.yml")])


DESCRIPTION = ("Table: main.retail.orders (monitor group sales)\nOwner: orders-owner@example.com\n"
               "Runbook: https://wiki.example.com/sales\n"
               "Lineage: https://adb-1.azuredatabricks.net/explore/data/main/retail/orders?activeTab=lineage")
NOTIFY = dbsql.AlertV2Notification(subscriptions=[dbsql.AlertV2Subscription(user_email="sales-oncall@example.com"),
                                                  dbsql.AlertV2Subscription(destination_id="dest-123")])


def alert(name: str, query: str, operator: dbsql.ComparisonOperator, threshold: float) -> dbsql.AlertV2:
    return dbsql.AlertV2(
        display_name=name, query_text=query, warehouse_id="wh-1", custom_description=DESCRIPTION,
        evaluation=dbsql.AlertV2Evaluation(
            source=dbsql.AlertV2OperandColumn(name="value"), comparison_operator=operator,
            threshold=dbsql.AlertV2Operand(value=dbsql.AlertV2OperandValue(double_value=threshold)),
            notification=NOTIFY),
        schedule=dbsql.CronSchedule(quartz_cron_schedule="0 0 * * * ?", timezone_id="UTC"))


NULLS = alert("ldp main.retail.orders: percent_null(country) >",
              "SELECT `percent_null` AS value FROM `main`.`retail_mon`.`orders_profile_metrics` WHERE "
              "column_name = 'country' AND slice_key IS NULL AND log_type = 'INPUT' "
              "ORDER BY `window`.`start` DESC LIMIT 1", dbsql.ComparisonOperator.GREATER_THAN, 20.0)
DRIFT = alert("ldp main.retail.orders: js_distance(currency) >=",
              "SELECT `js_distance` AS value FROM `main`.`retail_mon`.`orders_drift_metrics` WHERE "
              "column_name = 'currency' AND slice_key IS NULL AND drift_type = 'CONSECUTIVE' "
              "ORDER BY `window`.`start` DESC LIMIT 1", dbsql.ComparisonOperator.GREATER_THAN_OR_EQUAL, 0.3)


def view(kind: str, columns: list[str]) -> str:
    listed = ", ".join(f"`{c}`" for c in columns)
    return (f"CREATE OR REPLACE VIEW `main`.`retail_mon`.`sales_{kind}_metrics` AS "
            f"SELECT 'orders' AS table_name, {listed} FROM `main`.`retail_mon`.`orders_{kind}_metrics` UNION ALL "
            f"SELECT 'revenue' AS table_name, {listed} FROM `main`.`retail_mon`.`revenue_{kind}_metrics`")


def test_apply_creates_updates_and_trashes_exactly_the_declared_alerts_and_replaces_the_group_views(
        monkeypatch, tmp_path):
    old_threshold = alert(DRIFT.display_name, DRIFT.query_text, DRIFT.evaluation.comparison_operator, 0.5)
    old_threshold.id = "a-drift"
    gone = dbsql.AlertV2(display_name="ldp main.retail.orders: max(amount) >", query_text="q", warehouse_id="wh-1",
                         evaluation=DRIFT.evaluation, schedule=DRIFT.schedule, id="a-gone")
    someone_elses = dbsql.AlertV2(display_name="orders volume", query_text="q", warehouse_id="wh-1",
                                  evaluation=DRIFT.evaluation, schedule=DRIFT.schedule, id="a-other")
    w = workspace([old_threshold, gone, someone_elses])
    result = invoke(monkeypatch, tmp_path, w, "apply", "--confirm", "--delete-orphans", "--warehouse-id", "wh-1",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["alerts"] == [
        {"table": "main.retail.orders", "action": "create", "alert": NULLS.display_name, "fields": []},
        {"table": "main.retail.orders", "action": "update", "alert": DRIFT.display_name, "fields": ["evaluation"]},
        {"table": "main.retail.orders", "action": "orphan", "alert": gone.display_name, "fields": []},
        {"table": "main.retail_mon", "action": "replace", "view": "sales_profile_metrics", "fields": []},
        {"table": "main.retail_mon", "action": "replace", "view": "sales_drift_metrics", "fields": []}]
    w.alerts_v2.create_alert.assert_called_once_with(NULLS)
    w.alerts_v2.update_alert.assert_called_once_with("a-drift", DRIFT, "evaluation")
    w.alerts_v2.trash_alert.assert_called_once_with("a-gone")  # never one the engine did not make
    assert w.statement_execution.execute_statement.call_args_list == [
        call(view("profile", PROFILE_SCHEMA.fieldNames()), "wh-1", wait_timeout="50s"),
        call(view("drift", DRIFT_SCHEMA.fieldNames()), "wh-1", wait_timeout="50s")]


def test_plan_changes_nothing_and_an_unchanged_alert_says_so(monkeypatch, tmp_path):
    current = [alert(a.display_name, a.query_text, a.evaluation.comparison_operator,
                     a.evaluation.threshold.value.double_value) for a in (NULLS, DRIFT)]
    for read in current:  # what the workspace adds to a stored alert is no difference
        read.id, read.lifecycle_state = "a-" + read.display_name[-3:], dbsql.AlertLifecycleState.ACTIVE
        read.evaluation.state, read.evaluation.last_evaluated_at = dbsql.AlertEvaluationState.OK, "2026-12-06T01:00:00Z"
        read.evaluation.notification.retrigger_seconds = 0
        read.evaluation.notification.subscriptions.reverse()
        read.schedule.pause_status = dbsql.SchedulePauseStatus.UNPAUSED
    w = workspace(current)
    result = invoke(monkeypatch, tmp_path, w, "plan", "--warehouse-id", "wh-1")
    assert result.exit_code == 0, result.output
    assert f"unchanged alert {NULLS.display_name}\n" in result.output
    assert "replace   view main.retail_mon.sales_drift_metrics\n" in result.output
    for method in (w.alerts_v2.create_alert, w.alerts_v2.update_alert, w.alerts_v2.trash_alert,
                   w.statement_execution.execute_statement):
        method.assert_not_called()


def test_without_a_warehouse_the_alerts_are_a_usage_error_before_any_request(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABRICKS_WAREHOUSE_ID", raising=False)
    w = workspace([])
    result = invoke(monkeypatch, tmp_path, w, "apply", "--confirm")
    assert result.exit_code == 2 and "--warehouse-id" in result.output and "Traceback" not in result.output
    w.data_quality.create_monitor.assert_not_called()
    w.alerts_v2.create_alert.assert_not_called()


def test_groups_are_located_config_errors(monkeypatch, tmp_path):
    w = workspace([])
    unknown = CONFIG.replace("monitor: {group: sales}", "monitor: {group: finance}")
    result = invoke(monkeypatch, tmp_path, w, "validate", config=unknown)
    assert result.exit_code == 1 and "revenue" in result.output and "monitor.group" in result.output
    assert "no monitoring group 'finance'" in result.output and "groups: sales" in result.output
    ungrouped = CONFIG.replace("      group: sales\n", "")
    result = invoke(monkeypatch, tmp_path, w, "validate", config=ungrouped)
    assert result.exit_code == 1 and "monitor.alerts[0].databricks" in result.output
    assert "needs the monitor's group" in result.output
    empty = CONFIG.replace("notify: [sales-oncall@example.com, dest-123], ", "notify: [], ")
    result = invoke(monkeypatch, tmp_path, w, "validate", config=empty)
    assert result.exit_code == 1 and "monitoring.groups.sales.notify" in result.output, result.output


def test_an_alert_whose_table_lost_its_monitor_is_an_orphan_and_only_delete_orphans_trashes_it(
        monkeypatch, tmp_path):
    left = dbsql.AlertV2(display_name="ldp main.retail.revenue: count(:table) <", query_text="q",
                         warehouse_id="wh-1", evaluation=DRIFT.evaluation, schedule=DRIFT.schedule, id="a-left")
    unmonitored = CONFIG.replace("    monitor: {group: sales}\n", "")
    w = workspace([left])
    result = invoke(monkeypatch, tmp_path, w, "plan", "--warehouse-id", "wh-1", "--format", "json",
                    config=unmonitored)
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.output)["alerts"]
    assert {"table": "main.retail.revenue", "action": "orphan", "alert": left.display_name, "fields": []} in alerts
    w.alerts_v2.trash_alert.assert_not_called()
    w.alerts_v2.list_alerts.return_value = iter([left])
    result = invoke(monkeypatch, tmp_path, w, "apply", "--confirm", "--delete-orphans", "--warehouse-id", "wh-1",
                    config=unmonitored)
    assert result.exit_code == 0, result.output
    w.alerts_v2.trash_alert.assert_called_once_with("a-left")


def test_a_config_without_groups_asks_nothing_of_the_alerts_api(monkeypatch, tmp_path):
    ungrouped = CONFIG.split("monitoring:")[0] + "tables:\n  - {name: orders, layer: silver, monitor: {}}\n"
    w = workspace([])
    result = invoke(monkeypatch, tmp_path, w, "plan", "--format", "json", config=ungrouped)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["alerts"] == []
    w.alerts_v2.list_alerts.assert_not_called()
