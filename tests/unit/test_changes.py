"""`plan`'s comparison of config.yml with the stored tables: pure, destructive steps first."""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.core.changes import Action, plan_changes
from pipelines.core.config import parse_config

CONFIG = """
tables:
  - name: raw
    layer: bronze
    source: {type: table, table: x}
    expectations: [{criticality: error, check: {function: is_not_null, arguments: {column: id}}}]
  - name: clean
    layer: silver
    depends_on: [raw]
    columns: [{name: id, type: bigint}, {name: amount, type: "decimal(10,2)"}, {name: note, type: string}]
  - name: wide
    layer: silver
    depends_on: [raw]
    contract: additive
    columns: [{name: id, type: bigint}]
  - {name: report, layer: gold, depends_on: [clean]}
"""


def changes(stored, written=(), selected=("raw", "clean", "wide", "report")):
    config = parse_config(CONFIG, Path("config.yml"))
    return [(c.table, c.action, c.details) for c in plan_changes(config, selected, stored, written)]


def test_a_fresh_catalog_creates_every_table_with_its_quarantine():
    assert changes({}) == [("clean", Action.CREATE, ()), ("raw", Action.CREATE, ("with raw_quarantine",)),
                           ("report", Action.CREATE, ()), ("wide", Action.CREATE, ())]


def test_breaking_and_dropped_tables_come_first_with_each_column_named():
    stored = {"raw": {"id": "bigint", "_warnings": "array<string>"}, "raw_quarantine": {},
              "clean": {"id": "int", "amount": "decimal(10,2)", "legacy": "string", "_warnings": "array<string>"},
              "wide": {"id": "bigint", "extra": "string"}, "report": None,
              "old": {"a": "int"}, "old_quarantine": {"a": "int"}, "foreign": {"a": "int"}}
    planned = changes(stored, written=["raw", "clean", "old", "report"])
    assert [(table, action) for table, action, _ in planned] == [
        ("old", Action.DROP), ("old_quarantine", Action.DROP), ("clean", Action.BREAKING),
        ("raw", Action.UNCHANGED), ("report", Action.UNCHANGED), ("wide", Action.UNCHANGED)]
    assert planned[2][2] == ("column id: int -> bigint", "drops column legacy (string)", "adds column note (string)")
    assert all(action.destructive for _, action, _ in planned[:3]) and not planned[3][1].destructive


def test_an_added_column_is_additive_and_a_selection_plans_only_its_tables():
    stored = {"clean": {"id": "bigint", "amount": "decimal(10,2)"}}
    assert changes(stored, selected=["clean"]) == [("clean", Action.ADDITIVE, ("adds column note (string)",))]


def test_plan_against_databricks_lists_the_schema_once_and_drops_only_what_the_pipeline_owns(tmp_path, monkeypatch):
    """An autospec'd WorkspaceClient: one `tables.list` of the pipeline's schema, the exact request."""
    import json
    from unittest.mock import create_autospec

    from click.testing import CliRunner
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.catalog import ColumnInfo, TableInfo

    from pipelines.engine import monitors_cli
    from pipelines.engine.cli import cli

    def column(name: str, spark_json: object) -> ColumnInfo:
        return ColumnInfo(name=name, type_json=json.dumps({"name": name, "type": spark_json, "nullable": True,
                                                            "metadata": {}}))

    w = create_autospec(WorkspaceClient, instance=True)
    w.tables.list.return_value = iter([
        TableInfo(name="clean", pipeline_id="p-1", columns=[column("id", "integer"), column("amount", "decimal(10,2)"),
                                                          column("note", "string")]),
        TableInfo(name="wide", pipeline_id="p-1", columns=[column("id", "long"), column(
            "tags", {"type": "array", "elementType": "string", "containsNull": True})]),
        TableInfo(name="gone", pipeline_id="p-1", columns=[column("a", "integer")]),
        TableInfo(name="someone_elses", pipeline_id="p-2", columns=[column("a", "integer")]),
    ])
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    (tmp_path / "config.yml").write_text(CONFIG)
    result = CliRunner().invoke(cli, ["plan", "--config", str(tmp_path / "config.yml"), "--target", "databricks",
                                      "--catalog", "main", "--schema", "sales", "--pipeline-id", "p-1",
                                      "--format", "json", "--fail-on", "destructive"])
    w.tables.list.assert_called_once_with(catalog_name="main", schema_name="sales")
    assert result.exit_code == 4, result.output
    out = json.loads(result.output)
    assert out["against"] == "main.sales"
    assert [(c["table"], c["action"], c["details"]) for c in out["changes"]] == [
        ("gone", "drop", ["no longer declared in config.yml: a Databricks pipeline "
                          "drops the tables it no longer defines; local runs leave it as it is"]),
        ("clean", "schema change (breaking)", ["column id: int -> bigint"]),
        ("raw", "create", ["with raw_quarantine"]), ("report", "create", []), ("wide", "unchanged", [])]


def test_plan_against_databricks_needs_a_catalog(tmp_path):
    from click.testing import CliRunner

    from pipelines.engine.cli import cli

    (tmp_path / "config.yml").write_text(CONFIG)
    result = CliRunner().invoke(cli, ["plan", "--config", str(tmp_path / "config.yml"), "--target", "databricks"])
    assert result.exit_code == 2
    assert "--target databricks needs a catalog" in result.output and "pass --catalog" in result.output


SINKS = """
tables:
  - name: orders
    layer: gold
    source: {type: table, table: x}
    expectations:
      - {name: id_present, criticality: error, check: {function: is_not_null, arguments: {column: id}}}
    sinks:
      - {type: lakebase, schema: app, mode: upsert, primary_key: [id]}
"""


def test_checks_sinks_and_monitor_changed_since_the_last_run_are_an_update_naming_each():
    from pipelines.core.changes import declarations

    before = parse_config(SINKS, Path("config.yml"))
    recorded = {"orders": declarations(before.table("orders"), before.base_dir)}
    after = parse_config(SINKS.replace("primary_key: [id]", "primary_key: [id, day]").replace(
        "    sinks:", "      - {name: amount_positive, check: {function: sql_expression, arguments: "
                     "{expression: amount > 0}}}\n    monitor: {profile: snapshot}\n    sinks:"), Path("config.yml"))
    stored = {"orders": {"id": "int"}}
    assert plan_changes(after, ["orders"], stored, previous=recorded)[0].to_dict() == {
        "table": "orders", "action": "update", "destructive": False, "details": [
            "no contract (columns:), not resolved: schema not compared",
            "check amount_positive added",
            'sink lakebase app.orders changed: primary_key ["id"] -> ["id", "day"]',
            "monitor added"]}
    assert plan_changes(before, ["orders"], stored, previous=recorded)[0].action is Action.UNCHANGED


def test_plan_against_databricks_names_checks_sinks_and_monitor_changed_since_the_last_update(tmp_path, monkeypatch):
    """The registrar keeps a table's declarations as digests in a table property; `tables.list` returns it."""
    import json
    from unittest.mock import create_autospec

    from click.testing import CliRunner
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.catalog import ColumnInfo, TableInfo

    from pipelines.core.changes import DECLARATIONS_PROPERTY, declarations_property
    from pipelines.engine import monitors_cli
    from pipelines.engine.cli import cli

    registered = declarations_property(parse_config(SINKS, Path("config.yml")).table("orders"), tmp_path)
    assert len(registered) < 200 and json.loads(registered)["digests"] is True
    id_column = ColumnInfo(name="id", type_json=json.dumps({"name": "id", "type": "integer", "nullable": True,
                                                             "metadata": {}}))
    w = create_autospec(WorkspaceClient, instance=True)
    w.tables.list.side_effect = lambda **_: iter([TableInfo(name="orders", pipeline_id="p-1", columns=[id_column],
                                                            properties={DECLARATIONS_PROPERTY: registered})])
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)

    def plan(config: str) -> list[dict]:
        (tmp_path / "config.yml").write_text(config)
        result = CliRunner().invoke(cli, ["plan", "--config", str(tmp_path / "config.yml"), "--target", "databricks",
                                          "--catalog", "main", "--schema", "sales", "--pipeline-id", "p-1",
                                          "--format", "json", "--no-schemas"])
        assert result.exit_code == 0, result.output
        return [(c["action"], c["details"]) for c in json.loads(result.output)["changes"]]

    unresolved = "no contract (columns:), not resolved: schema not compared"
    assert plan(SINKS) == [("unchanged", [unresolved])]
    assert plan(SINKS.replace("primary_key: [id]", "primary_key: [id, day]").replace(
        "    sinks:", "      - {name: amount_positive, check: {function: sql_expression, arguments: "
                     "{expression: amount > 0}}}\n    monitor: {profile: snapshot}\n    sinks:")) == [
        ("update", [unresolved, "check amount_positive added", "sink lakebase app.orders changed", "monitor added"])]
    assert [c.kwargs for c in w.tables.list.call_args_list] == [{"catalog_name": "main", "schema_name": "sales"}] * 2


def test_a_breaking_change_to_a_streaming_table_says_it_needs_a_full_refresh():
    config = parse_config(CONFIG, Path("config.yml"))
    stored = {"clean": {"id": "int", "amount": "decimal(10,2)", "note": "string"}}
    [change] = plan_changes(config, ["clean"], stored, streaming=["clean"])
    assert change.action is Action.BREAKING and change.details == (
        "column id: int -> bigint", "full refresh needed: a streaming table keeps the rows it appended under "
        "the old schema (run with --full-refresh, which recomputes it from its sources)")
    [batch] = plan_changes(config, ["clean"], stored)
    assert batch.details == ("column id: int -> bigint",)


DIGESTED = """
pipeline: {transformations: ./t}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT, amount INT"}
  - name: inferred
    layer: bronze
    source: {type: files, format: csv, path: ./in}
  - {name: clean, layer: silver, depends_on: [raw]}
  - {name: mixed, layer: gold, depends_on: [clean, inferred]}
"""


def test_a_querys_digest_follows_its_code_declaration_mode_and_upstream_but_not_its_checks(tmp_path):
    from pipelines.core.changes import query_digests

    (tmp_path / "t" / "silver").mkdir(parents=True)
    module = tmp_path / "t" / "silver" / "clean.py"
    module.write_text("def clean(raw):\n    return raw\n")

    def digests(config: str = DIGESTED, mode: str = "batch") -> dict[str, str]:
        (tmp_path / "config.yml").write_text(config)
        return query_digests(parse_config(config, tmp_path / "config.yml"), ["raw", "inferred", "clean", "mixed"],
                             mode)

    first = digests()
    assert set(first) == {"raw", "clean"}  # an inferred schema follows the data: no digest, nor downstream of it
    assert digests() == first
    checked = DIGESTED.replace("depends_on: [raw]}", "depends_on: [raw], expectations: [{criticality: warn, "
                               "check: {function: is_not_null, arguments: {column: id}}}]}")
    assert digests(checked) == first
    retyped = digests(DIGESTED.replace("amount INT", "amount STRING"))
    assert retyped["raw"] != first["raw"] and retyped["clean"] != first["clean"]  # upstream changed
    assert digests(mode="streaming")["clean"] != first["clean"]
    module.write_text("def clean(raw):\n    return raw.select('id')\n")
    assert digests()["clean"] != first["clean"]


def test_plan_resolves_only_changed_queries_and_the_selected_tables_upstream_of_them():
    from pipelines.core.changes import to_resolve

    config = parse_config(DIGESTED, Path("config.yml"))
    digests = {"raw": "r1", "clean": "c1"}
    recorded = {"raw": {"query": "r1"}, "clean": {"query": "c1"}, "mixed": {"query": "m0"}}
    names = ["raw", "inferred", "clean", "mixed"]
    assert to_resolve(config, names, ["raw", "clean"], digests, recorded) == []
    assert to_resolve(config, names, ["raw", "clean"], {**digests, "clean": "c2"}, recorded) == ["raw", "clean"]
    assert to_resolve(config, names, ["mixed"], digests, recorded) == ["raw", "inferred", "clean", "mixed"]
    assert to_resolve(config, ["clean"], ["clean"], digests, {}) == ["clean"]  # upstream outside: read as stored


def test_a_run_records_the_query_digest_of_each_table_it_wrote_and_a_restore_of_none(tmp_path):
    from pipelines.consumers.run_record import RunRecord
    from pipelines.core.plan import build_plan
    from pipelines.core.results import RunResult, TableResult
    from pipelines.core.vocabulary import TableStatus

    (tmp_path / "t" / "silver").mkdir(parents=True)
    (tmp_path / "t" / "silver" / "clean.py").write_text("def clean(raw):\n    return raw\n")
    (tmp_path / "config.yml").write_text(DIGESTED)
    plan = build_plan(parse_config(DIGESTED, tmp_path / "config.yml"))

    def recorded(runner: str) -> dict[str, str | None]:
        run = RunResult(runner, [TableResult("raw", "bronze", TableStatus.SUCCESS),
                                 TableResult("clean", "silver", TableStatus.FAILED)])
        RunRecord(tmp_path / runner, plan).on_run_finished(run)
        record = json.loads((tmp_path / runner / f"{run.run_id}.json").read_text())
        return {name: declared.get("query") for name, declared in record["declared"].items()}

    queries = recorded("spark")
    assert queries["raw"] and queries["clean"] is None  # a failed table keeps its older columns
    assert set(recorded("restore").values()) == {None}  # an older version, of code that may have changed


FLOWS = """
tables:
  - name: orders
    layer: bronze
    flows:
      - {name: eu, source: {type: table, table: main.eu.orders}}
      - {name: erp, source: {type: jdbc, url: 'jdbc:postgresql://db/erp', table: orders, incremental_column: id}}
"""


def test_flows_added_removed_or_changed_are_named_and_a_removed_flows_landing_is_dropped():
    from pipelines.core.changes import declarations

    before = parse_config(FLOWS, Path("config.yml"))
    recorded = {"orders": declarations(before.table("orders"), before.base_dir)}
    stored = {"orders": {"id": "int"}, "erp__ldp_landing": {"id": "int"}, "eu__ldp_landing": {"id": "int"}}
    erp = FLOWS.index("      - {name: erp")
    after = parse_config(FLOWS[:erp].replace("main.eu.orders", "main.eu.orders_v2")
                         + "      - {name: us, source: {type: table, table: main.us.orders}}\n", Path("config.yml"))
    changes = [c.to_dict() for c in plan_changes(after, ["orders"], stored, written_before=["orders"],
                                                 previous=recorded)]
    assert changes == [  # eu is still declared: only the landing of erp, gone, is dropped
        {"table": "erp__ldp_landing", "action": "drop", "destructive": True, "details": [
            "no longer declared in config.yml: a Databricks pipeline drops the tables it no longer defines; "
            "local runs leave it as it is"]},
        {"table": "orders", "action": "update", "destructive": False, "details": [
            "no contract (columns:), not resolved: schema not compared", "flow us added", "flow erp removed",
            'flow eu changed: source {"type": "table", "table": "main.eu.orders"} -> '
            '{"type": "table", "table": "main.eu.orders_v2"}']}]
    assert plan_changes(before, ["orders"], stored, written_before=["orders"], previous=recorded)[0].action \
        is Action.UNCHANGED
    assert "flows" not in declarations(parse_config(SINKS, Path("config.yml")).table("orders"), Path("."))
