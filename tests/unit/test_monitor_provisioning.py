"""`ldp_engine monitors plan | apply | coverage`: the exact Databricks data-profiling requests, with an
autospec'd WorkspaceClient (the only fake: the workspace API)."""
from __future__ import annotations

import json
from unittest.mock import call, create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import dataquality as dq
from databricks.sdk.service.catalog import SchemaInfo, SchemasAPI, TableInfo, TablesAPI

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
    depends_on: [orders]
    monitor: {}
"""
IDS = {"main.retail.orders": "t-orders", "main.retail.revenue": "t-revenue", "main.retail.orders_baseline": "t-base"}


def workspace(monitors: dict[str, dq.Monitor | Exception]) -> WorkspaceClient:
    w = create_autospec(WorkspaceClient, instance=True)
    w.schemas = create_autospec(SchemasAPI, instance=True)
    w.tables = create_autospec(TablesAPI, instance=True)
    w.data_quality = create_autospec(dq.DataQualityAPI, instance=True)
    w.schemas.get.return_value = SchemaInfo(schema_id="s-mon", full_name="main.retail_mon")
    w.tables.get.side_effect = lambda full_name: TableInfo(full_name=full_name, table_id=IDS[full_name])

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
        {"table": "main.retail.revenue", "action": "create", "fields": []}]}
    w.schemas.get.assert_called_once_with("main.retail_mon")
    assert w.tables.get.call_args_list == [call("main.retail.orders"), call("main.retail.revenue")]
    w.data_quality.create_monitor.assert_not_called()
    w.data_quality.update_monitor.assert_not_called()


def test_apply_without_yes_applies_nothing_and_exits_2(project, monkeypatch):
    w = workspace({})
    result = invoke(monkeypatch, w, "apply", "--config", str(project))
    assert result.exit_code == 2 and "pass --yes" in result.output
    assert "create    main.retail.orders" in result.output
    w.data_quality.create_monitor.assert_not_called()


def test_apply_sends_exactly_the_planned_requests(project, monkeypatch):
    current = expected_orders()
    current.data_profiling_config.slicing_exprs = ["country"]
    current.data_profiling_config.schedule.pause_status = dq.CronSchedulePauseStatus.CRON_SCHEDULE_PAUSE_STATUS_UNPAUSED  # read-only
    w = workspace({"t-orders": current})
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--yes", "--refresh")
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
    result = invoke(monkeypatch, w, "apply", "--config", str(project), "--yes")
    assert result.exit_code == 0 and "unchanged main.retail.orders" in result.output
    w.data_quality.create_monitor.assert_not_called()
    w.data_quality.update_monitor.assert_not_called()


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
