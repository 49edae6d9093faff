"""`ldp_engine monitors validate | plan | apply | coverage`: the exact Databricks data-profiling requests,
with an autospec'd WorkspaceClient (the only fake: the workspace API)."""
from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import call, create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, TooManyRequests
from databricks.sdk.service import dataquality as dq
from databricks.sdk.service.catalog import ColumnInfo, SchemaInfo, SchemasAPI, TableInfo, TablesAPI

from pipelines.engine import monitors_cli
from pipelines.engine.cli import cli

CONFIG = """
pipeline: {name: retail, catalog: main, schema: retail}
monitoring: {output_schema: retail_mon, stale_days: 7}
tables:
  - name: orders
    layer: silver
    monitor:
      profile: timeseries
      timestamp_col: order_ts
      granularities: ["1 day", "1 week"]
      slicing_exprs: [currency]
      baseline_table: orders_baseline
      schedule: "0 0 6 * * ?"
      notify: [oncall@example.com]
  - name: orders_baseline
    layer: silver
  - name: revenue
    layer: gold
    tags: [finance]
    depends_on: [orders]
    monitor: {}
"""
IDS = {"main.retail.orders": "t-orders", "main.retail.revenue": "t-revenue", "main.retail.orders_baseline": "t-base"}
COLUMNS = {"t-orders": ["order_id", "order_ts", "currency", "amount"], "t-revenue": ["total"], "t-base": ["x"]}


def workspace(monitors: dict[str, dq.Monitor | Exception]) -> WorkspaceClient:
    w = create_autospec(WorkspaceClient, instance=True)
    w.schemas = create_autospec(SchemasAPI, instance=True)
    w.tables = create_autospec(TablesAPI, instance=True)
    w.data_quality = create_autospec(dq.DataQualityAPI, instance=True)
    w.schemas.get.return_value = SchemaInfo(schema_id="s-mon", full_name="main.retail_mon")
    def get_table(full_name):
        if full_name not in IDS:
            raise NotFound(f"Table '{full_name}' does not exist.")
        return TableInfo(full_name=full_name, table_id=IDS[full_name],
                         columns=[ColumnInfo(name=c) for c in COLUMNS[IDS[full_name]]])

    w.tables.get.side_effect = get_table

    def get_monitor(object_type, object_id):
        found = monitors.get(object_id, NotFound("no monitor"))
        if isinstance(found, Exception):
            raise found
        return found

    w.data_quality.get_monitor.side_effect = get_monitor
    return w


def expected_orders() -> dq.Monitor:
    return dq.Monitor(object_type="table", object_id="t-orders", data_profiling_config=dq.DataProfilingConfig(
        output_schema_id="s-mon", baseline_table_name="main.retail.orders_baseline", slicing_exprs=["currency"],
        schedule=dq.CronSchedule(quartz_cron_expression="0 0 6 * * ?", timezone_id="UTC"),
        notification_settings=dq.NotificationSettings(
            on_failure=dq.NotificationDestination(email_addresses=["oncall@example.com"])),
        time_series=dq.TimeSeriesConfig(timestamp_column="order_ts", granularities=[
            dq.AggregationGranularity.AGGREGATION_GRANULARITY_1_DAY,
            dq.AggregationGranularity.AGGREGATION_GRANULARITY_1_WEEK])))


def expected_revenue() -> dq.Monitor:
    return dq.Monitor(object_type="table", object_id="t-revenue", data_profiling_config=dq.DataProfilingConfig(
        output_schema_id="s-mon", snapshot=dq.SnapshotConfig()))


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text(CONFIG)
    return tmp_path / "config.yml"


def invoke(monkeypatch, w, *args: str):
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    return CliRunner().invoke(cli, ["monitors", *args])


def test_plan_creates_missing_monitors_and_updates_only_the_fields_that_differ(project, monkeypatch):
    current = expected_orders()
    current.data_profiling_config.slicing_exprs = ["country"]
    current.data_profiling_config.status = dq.DataProfilingStatus.DATA_PROFILING_STATUS_ACTIVE  # read-only
    w = workspace({"t-orders": current})
    result = invoke(monkeypatch, w, "plan", "--config", str(project), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"changes": [
        {"table": "main.retail.orders", "action": "update", "fields": ["slicing_exprs"]},
        {"table": "main.retail.revenue", "action": "create", "fields": []}], "alerts": []}  # no group: no alert
    w.schemas.get.assert_called_once_with("main.retail_mon")
    assert w.tables.get.call_args_list == [call("main.retail.orders"), call("main.retail.orders_baseline"),
                                           call("main.retail.revenue")]
    w.data_quality.create_monitor.assert_not_called()
    w.data_quality.update_monitor.assert_not_called()


def test_apply_without_confirm_applies_nothing_and_exits_2(project, monkeypatch):
    w = workspace({})
    result = invoke(monkeypatch, w, "apply", "--config", str(project))
    assert result.exit_code == 2 and "pass --confirm" in result.output
    assert "create    main.retail.orders" in result.output
    w.data_quality.create_monitor.assert_not_called()


def test_apply_sends_exactly_the_planned_requests(project, monkeypatch):
    current = expected_orders()
    current.data_profiling_config.slicing_exprs = ["country"]
    current.data_profiling_config.schedule.pause_status = dq.CronSchedulePauseStatus.CRON_SCHEDULE_PAUSE_STATUS_UNPAUSED  # read-only
    w = workspace({"t-orders": current})
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm", "--refresh")
    assert result.exit_code == 0, result.output
    w.data_quality.update_monitor.assert_called_once_with(
        "table", "t-orders", expected_orders(), "data_profiling_config.slicing_exprs")
    w.data_quality.create_monitor.assert_called_once_with(expected_revenue())
    assert w.data_quality.create_refresh.call_args_list == [
        call("table", "t-orders", dq.Refresh(object_type="table", object_id="t-orders")),
        call("table", "t-revenue", dq.Refresh(object_type="table", object_id="t-revenue"))]
    w.data_quality.delete_monitor.assert_not_called()


def test_an_unchanged_monitor_gets_no_request(project, monkeypatch):
    w = workspace({"t-orders": expected_orders(), "t-revenue": expected_revenue()})
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm")
    assert result.exit_code == 0 and "unchanged main.retail.orders" in result.output
    w.data_quality.create_monitor.assert_not_called()
    w.data_quality.update_monitor.assert_not_called()
    w.data_quality.create_refresh.assert_not_called()


def test_a_monitor_the_config_no_longer_declares_is_an_orphan_deleted_only_when_asked(project, monkeypatch):
    stale = dq.Monitor(object_type="table", object_id="t-base", data_profiling_config=dq.DataProfilingConfig(
        output_schema_id="s-mon", snapshot=dq.SnapshotConfig()))
    w = workspace({"t-orders": expected_orders(), "t-revenue": expected_revenue(), "t-base": stale})
    result = invoke(monkeypatch, w, "plan", "--config", str(project))
    assert "orphan    main.retail.orders_baseline" in result.output
    invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm")
    w.data_quality.delete_monitor.assert_not_called()
    invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm", "--delete-orphans")
    w.data_quality.delete_monitor.assert_called_once_with("table", "t-base")


def test_the_selection_limits_the_requests_to_the_selected_tables(project, monkeypatch):
    w = workspace({})
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--tags", "finance", "--confirm")
    assert result.exit_code == 0, result.output
    assert w.tables.get.call_args_list == [call("main.retail.revenue")]
    w.data_quality.create_monitor.assert_called_once_with(expected_revenue())


def test_a_table_not_created_yet_is_planned_as_no_table_and_apply_exits_3(project, monkeypatch):
    del IDS["main.retail.revenue"]
    try:
        w = workspace({"t-orders": expected_orders()})
        assert "no-table  main.retail.revenue" in invoke(monkeypatch, w, "plan", "--config", str(project)).output
        result = invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm")
        assert result.exit_code == 3 and "the table does not exist: main.retail.revenue" in result.output
    finally:
        IDS["main.retail.revenue"] = "t-revenue"


@pytest.mark.parametrize("error", [PermissionDenied("User lacks MANAGE on the table"),
                                   TooManyRequests("rate limit exceeded")])
def test_an_auth_or_rate_limit_error_exits_3_naming_the_table_and_is_never_taken_for_no_monitor(
        project, monkeypatch, error):
    w = workspace({"t-orders": error})
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--confirm")
    assert result.exit_code == 3, result.output
    assert f"table 'orders': {type(error).__name__}: {error}" in result.output
    w.data_quality.create_monitor.assert_not_called()


def test_validate_is_offline_and_check_workspace_names_missing_columns(project, monkeypatch):
    w = workspace({})
    result = invoke(monkeypatch, w, "validate", "--config", str(project), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output) == {"status": "valid", "monitors": ["orders", "revenue"]}
    assert w.mock_calls == []  # offline
    COLUMNS["t-orders"].remove("order_ts")
    try:
        result = invoke(monkeypatch, w, "validate", "--config", str(project), "--check-workspace")
    finally:
        COLUMNS["t-orders"].append("order_ts")
    assert result.exit_code == 1
    assert "table 'orders', key 'monitor.timestamp_col': the table has no column 'order_ts'" in result.output


def test_policy_and_validation_errors_exit_1_without_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text(CONFIG.replace("monitoring: {", "monitoring: {policy: {required: [owner]}, "))
    result = invoke(monkeypatch, workspace({}), "validate", "--config", str(tmp_path / "config.yml"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "table 'orders', key 'monitor.owner': the monitoring policy requires 'owner'" in result.output


def test_coverage_separates_unmonitored_from_errors_and_finds_stale_and_orphans(project, monkeypatch):
    w = workspace({"t-orders": expected_orders(), "t-revenue": PermissionDenied("no MANAGE on revenue")})
    w.tables.list.side_effect = lambda catalog_name, schema_name: [
        TableInfo(name=n) for n in ({"retail": ["orders", "revenue", "orders_baseline"],
                                     "retail_mon": ["orders_profile_metrics", "orders_drift_metrics",
                                                    "dropped_profile_metrics"]}[schema_name])]
    old = dq.Refresh(object_type="table", object_id="t-orders", state=dq.RefreshState.MONITOR_REFRESH_STATE_SUCCESS,
                     end_time_ms=1_000 * (1_795_000_000 - 10 * 86_400))
    w.data_quality.list_refresh.return_value = iter([old])
    result = invoke(monkeypatch, w, "coverage", "--config", str(project), "--format", "json")
    assert result.exit_code == 3
    found = json.loads(result.output)
    assert found["monitored"] == ["main.retail.orders"] and found["unmonitored"] == []
    assert found["errors"] == {"main.retail.revenue": "PermissionDenied: no MANAGE on revenue"}
    assert found["orphans"] == ["main.retail_mon.dropped_profile_metrics"]
    assert "last successful refresh" in found["stale"]["main.retail.orders"]
    w.data_quality.list_refresh.assert_called_once_with("table", "t-orders")


def test_a_pipeline_without_a_catalog_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text(CONFIG.replace("catalog: main, ", ""))
    result = invoke(monkeypatch, workspace({}), "plan", "--config", str(tmp_path / "config.yml"))
    assert result.exit_code == 2 and "pass --catalog or set pipeline.catalog" in result.output


def test_the_bundle_jobs_monitors_task_runs_with_its_own_parameters(monkeypatch):
    """The job's second task, placeholders filled in as Databricks would, on the repository's config."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    job = yaml.safe_load((repo / "workflows/daily_job.yml").read_text())["resources"]["jobs"]["ldp_daily"]
    [task] = [t for t in job["tasks"] if t["task_key"] == "monitors"]
    filled = {"{{job.parameters.tags}}": "daily", "${var.catalog}": "main", "${var.schema}": "retail_prod",
              "${workspace.file_path}/config.yml": str(repo / "config.yml")}
    args = [filled.get(a, a) for a in task["python_wheel_task"]["parameters"]]
    w = create_autospec(WorkspaceClient, instance=True)
    w.schemas = create_autospec(SchemasAPI, instance=True)
    w.tables = create_autospec(TablesAPI, instance=True)
    w.data_quality = create_autospec(dq.DataQualityAPI, instance=True)
    w.schemas.get.return_value = SchemaInfo(schema_id="s-mon")
    w.tables.get.side_effect = lambda full_name: TableInfo(full_name=full_name, table_id=f"id-{full_name}")
    w.data_quality.get_monitor.side_effect = NotFound("no monitor")
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    w.schemas.get.assert_called_once_with("main.retail_prod_monitoring")
    created = sorted(c.args[0].object_id for c in w.data_quality.create_monitor.call_args_list)
    assert created == [f"id-main.retail_prod.{t}" for t in ("customer_orders_gold", "customers_gold", "orders_silver")]
    assert w.data_quality.create_refresh.call_count == 3
