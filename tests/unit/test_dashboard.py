"""The bundled pipeline-health dashboard (`dashboards/pipeline_health.lvdash.json`), checked offline:
its queries parse as Databricks SQL and name only the inventory's tables and columns (read from the
inventory's own DDL), its widgets read only what their datasets return, and its bundle resource
deploys it over the inventory's database catalog. Its queries run on a real PostgreSQL in
tests/integration/test_dashboard_queries.py."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.core.config import load_config
from pipelines.engine.cli import cli
from pipelines.lakebase.inventory import inventory_columns
from pipelines.monitors.dashboard import metric_tables, monitor_dashboard
from pipelines.monitors.profile import DRIFT_SCHEMA, PROFILE_SCHEMA

from . import bundle_checks
from . import dashboard_checks as checks

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "pipeline_health.lvdash.json"


def test_every_query_and_widget_names_only_what_the_inventory_declares():
    document = checks.load(DASHBOARD)
    assert checks.problems(document, inventory_columns()) == []
    columns, _ = checks.dataset_columns(document, inventory_columns())
    assert set(columns) == {"runs", "table_runs", "check_failure_rates", "alerts_fired", "sink_freshness"}
    pages = {page["name"]: [item["widget"]["name"] for item in page["layout"]] for page in document["pages"]}
    assert pages == {"runs": ["runs_per_day", "recent_runs"], "tables": ["rows_per_run", "seconds_per_run"],
                     "checks": ["failure_rate", "check_failures"], "monitors": ["alerts"], "sinks": ["freshness"]}


def test_the_inventory_tables_are_read_from_its_ddl():
    tables = inventory_columns()
    assert set(tables) == {"runs", "table_runs", "check_results", "sink_runs", "sink_state", "alerts"}
    assert tables["table_runs"][-4:] == ("rules_version", "rows_total", "changes", "new_columns")  # the ALTERs' too
    assert "passed" in tables["check_results"]


def _edited(change) -> dict:
    document = copy.deepcopy(checks.load(DASHBOARD))
    change(document)
    return document


def _dataset(document: dict, name: str) -> dict:
    return next(d for d in document["datasets"] if d["name"] == name)


def _widget(document: dict, name: str) -> dict:
    return next(i["widget"] for p in document["pages"] for i in p["layout"] if i["widget"]["name"] == name)


@pytest.mark.parametrize("change, expected", [
    (lambda d: _dataset(d, "runs").update(queryLines=["SELECT run_id, finished FROM runs"]),
     "dataset runs: Column 'finished' could not be resolved"),
    (lambda d: _dataset(d, "runs").update(queryLines=["SELECT run_id FROM run_log"]),
     "dataset runs: table(s) run_log not declared"),
    (lambda d: _dataset(d, "table_runs").update(queryLines=["SELECT t.rows FROM table_runs AS t"]),
     "dataset table_runs: Unknown column: rows"),
    (lambda d: _dataset(d, "runs").update(queryLines=["SELECT run_id FROM runs WHERE"]),
     "dataset runs: "),
    (lambda d: _widget(d, "rows_per_run")["queries"][0]["query"].update(datasetName="table_run"),
     "widget rows_per_run: dataset 'table_run' does not exist"),
    (lambda d: _widget(d, "recent_runs")["queries"][0]["query"]["fields"].append(
        {"name": "who", "expression": "`owner`"}),
     "widget recent_runs: field 'who' reads owner, not returned by dataset runs"),
    (lambda d: _widget(d, "freshness")["spec"]["encodings"]["columns"].append({"fieldName": "lag"}),
     "widget freshness: encoding names 'lag', not one of its fields"),
])
def test_a_broken_dashboard_is_reported_naming_the_dataset_or_widget(change, expected):
    found = checks.problems(_edited(change), inventory_columns())
    assert len(found) == 1 and found[0].startswith(expected), found


def test_the_bundle_deploys_the_dashboard_over_the_inventorys_database_catalog():
    for target in bundle_checks.TARGETS:
        bundle = bundle_checks.for_target(REPO, target)
        resources = bundle["resources"]
        assert bundle_checks.schema_problems(bundle) == []
        dashboard = resources["dashboards"]["pipeline_health"]
        assert dashboard["dataset_catalog"] == "${resources.database_catalogs.ldp_inventory.name}"
        assert dashboard["dataset_schema"] == "${var.inventory_schema}"
        assert (REPO / "resources" / dashboard["file_path"]).resolve() == DASHBOARD
        catalog = resources["database_catalogs"]["ldp_inventory"]
        assert (catalog["database_instance_name"], catalog["database_name"]) == (
            "${var.lakebase_instance}", "${var.lakebase_database}")
    names = {target: bundle_checks.for_target(REPO, target)["variables"]["inventory_catalog"]["default"]
             for target in bundle_checks.TARGETS}
    assert len(set(names.values())) == 3, names  # a catalog name is the metastore's: one per target
    assert bundle_checks.combined(REPO)["variables"]["inventory_schema"]["default"] == "ldp_meta"


MONITORS = REPO / "dashboards" / "monitors.lvdash.json"


def _metric_tables(config) -> dict[str, list[str]]:
    schemas = {"profile": PROFILE_SCHEMA, "drift": DRIFT_SCHEMA}
    return {table: schemas[kind].fieldNames() for table, kind in metric_tables(config).items()}


def test_the_monitors_dashboard_is_the_one_the_example_config_generates_and_names_only_metric_columns():
    config = load_config(REPO / "config.yml")
    document = checks.load(MONITORS)
    assert document == monitor_dashboard(config), (
        "rerun: ldp_engine monitors dashboard --output dashboards/monitors.lvdash.json")
    assert checks.problems(document, _metric_tables(config)) == []
    assert set(_metric_tables(config)) == {f"{t}_{k}_metrics" for t in ("orders_silver", "customers_gold",
                                                                        "customer_orders_gold")
                                           for k in ("profile", "drift")}
    pages = {page["name"]: [item["widget"]["name"] for item in page["layout"]] for page in document["pages"]}
    assert pages == {"volume": ["rows_per_window", "volume_rows"], "columns": ["null_rate", "column_stats"],
                     "drift": ["js_distance", "drift_rows"]}


def test_a_monitors_dashboard_naming_a_metric_column_that_does_not_exist_is_reported():
    config = load_config(REPO / "config.yml")
    document = monitor_dashboard(config)
    document["datasets"][2]["queryLines"] = [line.replace("js_distance,", "jensen_shannon,")
                                             for line in document["datasets"][2]["queryLines"]]
    found = checks.problems(document, _metric_tables(config))
    assert found and found[0].startswith("dataset drift: Column 'jensen_shannon' could not be resolved"), found


def test_monitors_dashboard_writes_the_file_and_a_config_without_monitors_is_a_usage_error(tmp_path):
    written = tmp_path / "monitors.lvdash.json"
    result = CliRunner().invoke(cli, ["monitors", "dashboard", "--config", str(REPO / "config.yml"),
                                      "--output", str(written)])
    assert result.exit_code == 0, result.output
    assert written.read_text() == MONITORS.read_text()
    (tmp_path / "config.yml").write_text("tables:\n  - {name: t, layer: bronze}\n")
    result = CliRunner().invoke(cli, ["monitors", "dashboard", "--config", str(tmp_path / "config.yml")])
    assert result.exit_code == 2 and "no table declares a monitor" in result.output
    assert "Traceback" not in result.output


def test_the_bundle_deploys_the_monitors_dashboard_over_the_monitoring_schema():
    assert load_config(REPO / "config.yml").monitoring.output_schema is None  # so: {schema}_monitoring
    for target in bundle_checks.TARGETS:
        dashboard = bundle_checks.for_target(REPO, target)["resources"]["dashboards"]["monitors"]
        assert (dashboard["dataset_catalog"], dashboard["dataset_schema"]) == (
            "${var.catalog}", "${var.schema}_monitoring")
        assert (REPO / "resources" / dashboard["file_path"]).resolve() == MONITORS
