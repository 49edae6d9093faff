"""`ldp_engine plan` on the example after each kind of edit (issue 24): the example's tables written by
a real run on the shared session, its run recorded, then one edit of config.yml at a time; each gives
its exact classification, and `--fail-on destructive` exits 4 on the breaking ones only."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.consumers.run_record import RunRecord
from pipelines.engine.cli import cli
from pipelines.engine.embedded_kafka import embedded_kafka
from pipelines.engine.project import load_project
from pipelines.runners.spark import SparkRunner
from pipelines.catalog.storage import TableStore
from tests.spark.harness import catalog_of

SCHEMA = "plan_example"

EXAMPLE = Path(__file__).resolve().parents[2]
_config = (EXAMPLE / "config.yml").read_text()
CUSTOMERS_GOLD = _config[_config.index("  - name: customers_gold\n"):_config.index("  - name: customer_orders_gold\n")]

# edit: (old text, new text), the table it changes, its action, details, whether destructive
EDITS = {
    "add a column": (
        ("      - {name: first_signup, type: date}\n",
         "      - {name: first_signup, type: date}\n      - {name: last_signup, type: date}\n"),
        "customers_gold", "schema change (additive)", ["adds column last_signup (date)"], False),
    "drop a column": (
        ("      - {name: updated_at, type: timestamp}\n", ""),
        "customers_silver", "schema change (breaking)", ["drops column updated_at (timestamp)"], True),
    "change a type": (
        ("      - {name: signup_date, type: date}\n", "      - {name: signup_date, type: string}\n"),
        "customers_silver", "schema change (breaking)", ["column signup_date: date -> string"], True),
    "change a streaming table's query incompatibly": (
        ("order_id STRING, customer_id STRING, amount DOUBLE", "order_id STRING, customer_id STRING, amount STRING"),
        "orders_bronze", "schema change (breaking)", [
            "column amount: double -> string",
            "full refresh needed: a streaming table keeps the rows it appended under the old schema "
            "(run with --full-refresh, which recomputes it from its sources)"], True),
    "remove a table": (
        (CUSTOMERS_GOLD, ""),
        "customers_gold", "drop", [
            "no longer declared in config.yml: a Databricks pipeline drops the tables it no longer defines; "
            "local runs leave it as it is"], True),
    "add a check": (
        ("      - name: email_valid\n",
         "      - name: name_not_null\n        criticality: warn\n"
         "        check: {function: is_not_null, arguments: {column: name}}\n      - name: email_valid\n"),
        "customers_silver", "update", ["check name_not_null added"], False),
    "change a CDC table's stored columns": (
        ("      stored_as_scd_type: 2  #", "      except_column_list: [updated_at]\n      stored_as_scd_type: 2  #"),
        "customers_history", "schema change (breaking)", ["drops column updated_at (timestamp)"], True),
    "change a sink's primary key": (
        ("mode: upsert, primary_key: [customer_id]}", "mode: upsert, primary_key: [customer_id, country]}"),
        "customer_orders_gold", "update", [
            'sink lakebase retail_inventory.customer_orders_gold changed: primary_key ["customer_id"] -> '
            '["customer_id", "country"]'], False),
}


@pytest.fixture
def written(spark, tmp_path) -> tuple[Path, Path]:
    """The example project and a state folder holding its tables (one batch run) and that run's record."""
    root = tmp_path
    project_dir = root / "project"
    project_dir.mkdir()
    for name in ("config.yml", "data", "expectations"):
        source = EXAMPLE / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project_dir / name)
    run_project = load_project(project_dir / "config.yml", mode="batch", schema=SCHEMA)
    store = TableStore(spark, run_project.plan.pipeline, root / "spark-state")
    with embedded_kafka(run_project.plan, root / "spark-state", print):  # the order events' broker
        result = SparkRunner(spark, run_project.plan, run_project.functions, store).run()
    assert result.status == "success", result.to_dict()
    state = root / "state"
    shutil.copytree(catalog_of(spark) / "warehouse" / f"{SCHEMA}.db", state / "warehouse" / "retail.db")
    RunRecord(state / "runs", load_project(project_dir / "config.yml", mode="batch").plan).on_run_finished(result)
    return project_dir, state


def plan(project_dir: Path, state: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(cli, ["plan", "--config", str(project_dir / "config.yml"), "--state-dir", str(state),
                                      "--format", "json", *args])
    assert result.exit_code in (0, 4), result.output
    return result.exit_code, {c["table"]: c for c in json.loads(result.output)["changes"]}


def test_plan_classifies_each_edit_exactly_and_only_breaking_ones_fail_the_gate(written, monkeypatch):
    """One test (the run is the cost; xdist would repeat a module fixture per worker): every edit is
    planned, and all mismatches are reported together."""
    from pipelines.catalog import session

    project_dir, state = written
    started = []
    scratch_spark = session.scratch_spark
    monkeypatch.setattr(session, "scratch_spark", lambda *a, **k: started.append(1) or scratch_spark(*a, **k))
    code, changes = plan(project_dir, state, "--fail-on", "destructive")
    assert code == 0  # nothing changed
    assert started == []  # every query's digest is the recorded run's: its stored columns, no Spark
    assert {name: change["action"] for name, change in changes.items()} == {
        name: "unchanged" for name in ("customers_bronze", "orders_bronze", "order_events_bronze", "customers_silver",
                                       "customers_history", "orders_silver", "customers_gold", "customer_orders_gold")}
    original, wrong, resolved = (project_dir / "config.yml").read_text(), {}, {}
    for edit, ((old, new), table, action, details, destructive) in EDITS.items():
        assert original.count(old) == 1, old
        mode = "streaming" if "streaming" in edit else "batch"
        try:
            (project_dir / "config.yml").write_text(original.replace(old, new))
            code, changes = plan(project_dir, state, "--mode", mode, "--fail-on", "destructive")
        finally:
            (project_dir / "config.yml").write_text(original)
        others = {name: c["action"] for name, c in changes.items() if name != table}
        got = (changes.get(table), set(others.values()) <= {"unchanged"}, code)
        want = ({"table": table, "action": action, "destructive": destructive, "details": details}, True,
                4 if destructive else 0)  # the edit changes nothing else; the gate stops breaking ones only
        if got != want:
            wrong[edit] = (got, others)
        resolved[edit] = len(started)
        started.clear()
    assert not wrong, wrong
    assert resolved == {  # Spark starts only where a query or its input changed: checks and sinks need none
        "add a column": 0, "drop a column": 1, "change a type": 1, "change a streaming table's query incompatibly": 1,
        "remove a table": 0, "add a check": 0, "change a CDC table's stored columns": 1,
        "change a sink's primary key": 0}, resolved
