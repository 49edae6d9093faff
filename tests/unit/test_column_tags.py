"""`ldp_engine tags plan | apply` against an autospec'd WorkspaceClient: the exact entity tag requests."""
from __future__ import annotations

import json
from unittest.mock import call, create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.catalog import EntityTagAssignment

from pipelines.engine import monitors_cli
from pipelines.engine.cli import cli

CONFIG = """
pipeline: {catalog: main, schema: sales}
tables:
  - name: customers
    layer: silver
    tags: [daily]
    source: {type: table, table: x}
    columns:
      - {name: id, type: string, tags: {pii: "false"}}
      - {name: email, type: string, tags: {pii: "true", classification: email}}
      - {name: signup, type: date}
  - name: orders
    layer: silver
    tags: [hourly]
    source: {type: table, table: y}
    columns: [{name: note, type: string, tags: {free_text: ""}}]
"""


def assigned(entity: str, key: str, value: str | None) -> EntityTagAssignment:
    return EntityTagAssignment(entity_name=entity, tag_key=key, entity_type="columns", tag_value=value)


@pytest.fixture
def workspace(monkeypatch):
    w = create_autospec(WorkspaceClient, instance=True)
    existing = {"main.sales.customers.id": [assigned("main.sales.customers.id", "pii", "false")],
                "main.sales.customers.email": [assigned("main.sales.customers.email", "pii", "maybe"),
                                               assigned("main.sales.customers.email", "owner", "crm")]}

    def listed(entity_type: str, entity_name: str):
        if entity_name not in existing:
            raise NotFound(f"Column '{entity_name}' does not exist.")
        return iter(existing[entity_name])

    w.entity_tag_assignments.list.side_effect = listed
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    return w


def invoke(tmp_path, *args: str):
    (tmp_path / "config.yml").write_text(CONFIG)
    return CliRunner().invoke(cli, ["tags", *args, "--config", str(tmp_path / "config.yml"), "--format", "json"])


def test_apply_creates_and_updates_the_declared_tags_and_leaves_the_others(tmp_path, workspace):
    result = invoke(tmp_path, "apply", "--confirm", "--tags", "daily")
    assert result.exit_code == 0, result.output
    assert workspace.entity_tag_assignments.list.call_args_list == [
        call(entity_type="columns", entity_name="main.sales.customers.id"),
        call(entity_type="columns", entity_name="main.sales.customers.email")]
    assert workspace.entity_tag_assignments.create.call_args_list == [
        call(tag_assignment=assigned("main.sales.customers.email", "classification", "email"))]
    assert workspace.entity_tag_assignments.update.call_args_list == [
        call(entity_type="columns", entity_name="main.sales.customers.email", tag_key="pii",
             tag_assignment=assigned("main.sales.customers.email", "pii", "true"), update_mask="tag_value")]
    workspace.entity_tag_assignments.delete.assert_not_called()  # `owner` was set by someone else
    assert json.loads(result.output)["changes"] == [
        {"action": "unchanged", "column": "main.sales.customers.id", "key": "pii", "value": "false", "before": "false"},
        {"action": "create", "column": "main.sales.customers.email", "key": "classification", "value": "email",
         "before": None},
        {"action": "update", "column": "main.sales.customers.email", "key": "pii", "value": "true",
         "before": "maybe"}]


def test_without_confirm_nothing_is_applied_and_a_missing_column_is_a_runtime_failure(tmp_path, workspace):
    result = invoke(tmp_path, "apply")
    assert result.exit_code == 2 and "nothing applied" in result.output
    workspace.entity_tag_assignments.create.assert_not_called()
    workspace.entity_tag_assignments.update.assert_not_called()

    result = invoke(tmp_path, "apply", "--confirm", "--select", "orders")
    assert result.exit_code == 3
    assert "not tagged yet, the column does not exist: main.sales.orders.note" in result.output
    workspace.entity_tag_assignments.create.assert_not_called()


def test_plan_reads_only_and_a_value_less_tag_is_a_key_alone(tmp_path, workspace):
    result = invoke(tmp_path, "plan")
    assert result.exit_code == 0, result.output
    assert [(c["action"], c["column"], c["key"]) for c in json.loads(result.output)["changes"]] == [
        ("unchanged", "main.sales.customers.id", "pii"), ("create", "main.sales.customers.email", "classification"),
        ("update", "main.sales.customers.email", "pii"), ("no-column", "main.sales.orders.note", "free_text")]
    workspace.entity_tag_assignments.create.assert_not_called()

    from pipelines.ldp.column_tags import TagChange, apply_tags

    apply_tags(workspace, [TagChange("create", "main.sales.orders.note", "free_text", "")])
    workspace.entity_tag_assignments.create.assert_called_once_with(
        tag_assignment=assigned("main.sales.orders.note", "free_text", None))


def test_tags_need_a_catalog(tmp_path, workspace):
    (tmp_path / "config.yml").write_text(CONFIG.replace("catalog: main, ", ""))
    result = CliRunner().invoke(cli, ["tags", "plan", "--config", str(tmp_path / "config.yml")])
    assert result.exit_code == 2 and "column tags live in Unity Catalog: pass --catalog" in result.output
    workspace.entity_tag_assignments.list.assert_not_called()


def test_the_bundle_jobs_tags_task_runs_with_its_own_parameters(monkeypatch):
    """The job's tags task, placeholders filled in as Databricks would, on the repository's config (whose
    customers_silver tags `email` pii=true)."""
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[2]
    job = yaml.safe_load((repo / "workflows/daily_job.yml").read_text())["resources"]["jobs"]["ldp_daily"]
    [task] = [t for t in job["tasks"] if t["task_key"] == "tags"]
    filled = {"{{job.parameters.tags}}": "daily", "${var.catalog}": "main", "${var.schema}": "retail_prod",
              "${workspace.file_path}/config.yml": str(repo / "config.yml"), "env_name=${bundle.target}": "env_name=prod"}
    w = create_autospec(WorkspaceClient, instance=True)
    w.entity_tag_assignments.list.return_value = iter([])
    monkeypatch.setattr(monitors_cli, "workspace_client", lambda: w)
    result = CliRunner().invoke(cli, [filled.get(a, a) for a in task["python_wheel_task"]["parameters"]])
    assert result.exit_code == 0, result.output
    w.entity_tag_assignments.list.assert_called_once_with(entity_type="columns",
                                                          entity_name="main.retail_prod.customers_silver.email")
    w.entity_tag_assignments.create.assert_called_once_with(
        tag_assignment=assigned("main.retail_prod.customers_silver.email", "pii", "true"))
