"""`ldp_engine plan` against a local catalog a real run wrote: stored schemas read from the Delta logs."""
from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from pipelines.consumers.run_record import RunRecord
from pipelines.engine.cli import cli
from pipelines.engine.project import load_project
from tests.spark.harness import catalog_of
from tests.spark.test_contracts import project


def test_plan_reads_the_stored_schemas_and_puts_destructive_changes_first(spark, tmp_path):
    """A run's tables, then config.yml retypes a column and forgets a table: `plan` says so without Spark,
    and `--fail-on destructive` exits 4."""
    (tmp_path / "project").mkdir()
    harness = project(spark, tmp_path / "project")
    harness.run()
    state = tmp_path / "state"
    shutil.copytree(catalog_of(spark) / "warehouse" / f"{harness.schema}.db", state / "warehouse" / f"{harness.schema}.db")
    (state / "runs").mkdir()
    (state / "runs" / "r1.json").write_text(json.dumps({"selection": ["raw", "clean", "report"], "finished_at": 1,
                                                        "summary": {"runner": "spark"}}))
    config = harness.path.read_text()
    harness.path.write_text(config.replace("{name: id, type: int, nullable: false}", "{name: id, type: bigint}")
                            .split("  - {name: report")[0])
    args = ["plan", "--config", str(harness.path), "--state-dir", str(state)]
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[1:5] == [
        " ! report: drop", "       no longer declared in config.yml: a Databricks "
        "pipeline drops the tables it no longer defines; local runs leave it as it is",
        " ! clean: schema change (breaking)", "       column id: int -> bigint"]
    failing = CliRunner().invoke(cli, [*args, "--fail-on", "destructive", "--format", "json", "--select", "clean"])
    assert failing.exit_code == 4
    assert json.loads(failing.output)["changes"] == [
        {"table": "report", "action": "drop", "destructive": True, "details": [
            "no longer declared in config.yml: a Databricks pipeline drops the tables "
            "it no longer defines; local runs leave it as it is"]},
        {"table": "clean", "action": "schema change (breaking)", "destructive": True,
         "details": ["column id: int -> bigint"]}]


def test_plan_resolves_a_table_without_a_contract_on_empty_inputs(spark, tmp_path):
    """`report` declares no columns: its query, resolved on empty inputs (nothing runs), drops `count` and
    adds `total`; `--no-schemas` leaves it uncompared. `raw` gained a check since the recorded run."""
    (tmp_path / "project").mkdir()
    harness = project(spark, tmp_path / "project")
    _, run = harness.run()
    state = tmp_path / "state"
    shutil.copytree(catalog_of(spark) / "warehouse" / f"{harness.schema}.db", state / "warehouse" / f"{harness.schema}.db")
    RunRecord(state / "runs", load_project(harness.path).plan).on_run_finished(run)  # what the CLI's run records
    harness.path.write_text(harness.path.read_text().replace(
        "    source: {type: files", "    expectations: [{name: id_present, check: {function: is_not_null, "
        "arguments: {column: id}}}]\n    source: {type: files"))
    report = harness.root / "transformations" / "gold" / "report.py"
    report.write_text("from pyspark.sql import functions as F\n"
                      "def report(clean):\n    return clean.groupBy().agg(F.sum('amount').alias('total'))\n")
    args = ["plan", "--config", str(harness.path), "--state-dir", str(state), "--format", "json"]
    changes = {c["table"]: c for c in json.loads(CliRunner().invoke(cli, args).output)["changes"]}
    assert changes["report"] == {"table": "report", "action": "schema change (breaking)", "destructive": True,
                                 "details": ["drops column count (bigint)", "adds column total (bigint)"]}
    assert changes["raw"] == {"table": "raw", "action": "update", "destructive": False,
                              "details": ["check id_present added"]}  # since the recorded run
    assert changes["clean"]["action"] == "unchanged"  # its contract, as stored
    unresolved = json.loads(CliRunner().invoke(cli, [*args, "--no-schemas"]).output)["changes"]
    assert {c["table"]: c["details"] for c in unresolved}["report"] == [
        "no contract (columns:), not resolved: schema not compared"]
