"""The example pipeline end to end through the CLI, as a data engineer runs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipelines.engine.cli import cli

REPO = Path(__file__).resolve().parents[2]


def run_cli(project: Path, *args: str) -> dict:
    """In-process CLI run on the shared session (the CLI reuses an active session, as on Databricks)."""
    result = CliRunner().invoke(cli, ["--config", str(project / "config.yml"), "--format", "json",
                                      "--state-dir", str(project / ".ldp"), *args])
    assert result.exit_code in (0, 3), result.stderr
    assert "Kafka: the embedded broker did not start" not in result.stderr, result.stderr  # the example needs it
    return json.loads(result.stdout)


def rows(summary: dict) -> dict[str, int]:
    return {t["name"]: t["rows_written"] for t in summary["tables"]}


def test_example_batch_then_rerun_gives_the_same_counts(spark, example_project):
    first = run_cli(example_project, "--mode", "batch")
    assert first["status"] == "success"
    assert all(t["status"] == "success" and t["rows_written"] > 0 and t["error"] is None
               for t in first["tables"])
    assert rows(first) == {"customers_bronze": 17, "orders_bronze": 19, "order_events_bronze": 7,
                           "customers_silver": 12, "customers_history": 16, "customers_gold": 4, "orders_silver": 15,
                           "customer_orders_gold": 12}
    assert {"name", "layer", "status", "rows_written", "rows_quarantined", "checks", "seconds",
            "error"} <= set(first["tables"][0])
    again = run_cli(example_project, "--mode", "batch")
    assert rows(again) == {**rows(first), "customers_history": 0}  # no change event is new to the rerun
    assert next(t for t in again["tables"] if t["name"] == "customers_history")["rows_total"] == 16
    records = sorted((example_project / ".ldp" / "runs").glob("2*.json"))  # one JSON record per run
    assert len(records) == 2
    record = json.loads(records[0].read_text())
    assert record["summary"] == first and record["pipeline"] == "retail_demo"
    assert {w["name"] for w in record["written"]} == set(rows(first))  # every table, as it was written
    assert spark.table("retail.customers_silver").where("customer_id = 'C003'").first()["email"] == \
        "alan.turing@example.com"
    versions = spark.table("retail.customers_history").where("customer_id = 'C003'").orderBy("__START_AT")
    assert [(r["email"], str(r["__START_AT"]), str(r["__END_AT"])) for r in versions.collect()] == [
        ("alan@example.com", "2026-11-01 08:00:00", "2026-11-02 09:30:00"),  # closed by the next version
        ("alan.turing@example.com", "2026-11-02 09:30:00", "None")]


def test_example_quarantine_holds_exactly_the_dirty_rows(spark, example_project):
    config = example_project / "config.yml"
    config.write_text(config.read_text().replace("schema: retail ", "schema: retail_dq "))
    summary = {t["name"]: t for t in run_cli(example_project, "--mode", "batch")["tables"]}

    def errors_by_key(table: str, key: str) -> dict:
        return {r[key]: sorted(e["name"] for e in r["_errors"])
                for r in spark.table(f"retail_dq.{table}").collect()}

    assert errors_by_key("customers_silver_quarantine", "customer_id") == {
        None: ["customer_id_not_null"], "C007": ["email_not_null"], "C009": ["email_valid"],
        "C015": ["email_valid"]}
    assert errors_by_key("orders_silver_quarantine", "order_id") == {
        "O1007": ["amount_not_negative"], "O1009": ["customer_id_not_null"], "O1011": ["amount_not_null"]}
    warned = {r["order_id"]: sorted(w["name"] for w in r["_warnings"])
              for r in spark.table("retail_dq.orders_silver").collect() if r["_warnings"]}
    assert warned == {"O1015": ["customer_known"], "O0990": ["not_late"]}
    orders = summary["orders_silver"]
    assert (orders["rows_written"], orders["rows_quarantined"]) == (15, 3)
    assert {c["name"]: c["failed"] for c in orders["checks"]} == {
        "amount_not_null": 1, "amount_not_negative": 1, "customer_id_not_null": 1,
        "customer_known": 2, "not_late": 1}
    assert summary["customers_silver"]["rows_quarantined"] == 4
    # the order event that is not JSON, from the embedded broker's topic: quarantined with its offset
    [bad] = spark.table("retail_dq.order_events_bronze_quarantine").collect()
    assert (bad["_kafka"]["topic"], bad["_kafka"]["offset"], [e["name"] for e in bad["_errors"]]) == (
        "retail.order_events", 4, ["malformed_record"])
    assert summary["order_events_bronze"]["rows_quarantined"] == 1


def test_example_streaming_appends_only_new_files(spark, example_project):
    config = example_project / "config.yml"
    config.write_text(config.read_text().replace("schema: retail ", "schema: retail_stream "))
    first = run_cli(example_project, "--mode", "streaming")
    assert first["status"] == "success" and rows(first)["orders_bronze"] == 19
    again = run_cli(example_project, "--mode", "streaming")
    assert rows(again)["orders_bronze"] == 0 and rows(again)["customers_bronze"] == 0
    assert spark.table("retail_stream.orders_bronze").count() == 19
    new_file = example_project / "data/landing/orders/orders_2026-11-03.json"
    new_file.write_text('{"order_id": "O2001", "customer_id": "C001", "amount": 5.0, "currency": "EUR", '
                        '"order_ts": "2026-11-03T08:00:00", "status": "paid"}\n')
    third = run_cli(example_project, "--mode", "streaming")
    assert rows(third)["orders_bronze"] == 1 and rows(third)["customers_bronze"] == 0
    assert rows(third)["orders_silver"] == 16  # downstream recomputed from the grown bronze table
    assert rows(again)["order_events_bronze"] == 0 and rows(third)["order_events_bronze"] == 0
    # the topic's producer (here: a new seed file, published once by the next run) adds two events
    (example_project / "data/events/order_events/order_events_2026-11-03.jsonl").write_text(
        '{"order_id": "O2001", "status": "placed", "event_ts": "2026-11-03T08:00:00"}\n'
        '{"order_id": "O1012", "status": "shipped", "event_ts": "2026-11-03T09:00:00"}\n')
    fourth = run_cli(example_project, "--mode", "streaming")
    assert rows(fourth)["order_events_bronze"] == 2 and rows(fourth)["orders_bronze"] == 0
    assert rows(run_cli(example_project, "--mode", "streaming"))["order_events_bronze"] == 0  # published once
    events = spark.table("retail_stream.order_events_bronze")
    assert sorted(r["_offset"] for r in events.collect()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # 4: quarantined


def test_failing_table_exits_3_with_the_summary(spark, example_project, tmp_path):
    folder = example_project / "transformations"
    shutil.copytree(REPO / "pipelines/transformations", folder)
    (folder / "gold/customers_gold.py").write_text("def customers_gold(customers_silver):\n"
                                                   "    return customers_silver.select('no_such_column')\n")
    config = example_project / "config.yml"
    config.write_text(config.read_text().replace("schema: retail ", "schema: retail_fail ").replace(
        "transformations: pipelines.transformations", "transformations: ./transformations"))
    result = CliRunner().invoke(cli, ["--config", str(config), "--state-dir", str(example_project / ".ldp")])
    assert result.exit_code == 3
    assert "customers_gold FAILED" in result.stderr and "no_such_column" in result.stderr
    assert "FAILED: 7/8 table(s) succeeded" in result.stdout
    assert "orders_silver.not_late (warn): 1 row(s)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_seed_invocation_runs_in_a_fresh_process(example_project):
    """`ldp_engine --tags daily,critical --mode batch` exactly as written, in a project folder."""
    script = Path(sys.executable).with_name("ldp_engine")
    proc = subprocess.run([str(script), "--tags", "daily,critical", "--mode", "batch"],
                          cwd=example_project, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "customers_bronze finished: 17 rows" in proc.stderr
    assert "SUCCESS: 1/1 table(s) succeeded" in proc.stdout
    assert (example_project / ".ldp/metastore_db").is_dir()


def test_rules_generate_proposes_valid_checks_from_the_data(spark, example_project):
    import yaml

    config = example_project / "config.yml"
    config.write_text(config.read_text().replace("schema: retail ", "schema: retail_rules "))
    run_cli(example_project, "--select", "+customers_silver")
    base = ["rules", "generate", "--config", str(config), "--state-dir", str(example_project / ".ldp")]
    result = CliRunner().invoke(cli, [*base, "--table", "customers_silver"])
    assert result.exit_code == 0, result.stderr
    checks = yaml.safe_load(result.stdout)
    assert checks and all(c["criticality"] == "warn" for c in checks)
    assert {"customer_id", "email"} <= {c["check"]["arguments"].get("column") for c in checks}
    from databricks.labs.dqx.engine import DQEngineCore
    assert not DQEngineCore.validate_checks(checks, semantic_validation_mode=None).has_errors

    assert CliRunner().invoke(cli, [*base, "--table", "nope"]).exit_code == 1
    no_file = CliRunner().invoke(cli, [*base, "--table", "customers_silver", "--write"])
    assert no_file.exit_code == 1 and "expectations_file" in no_file.stderr
    missing = CliRunner().invoke(cli, [*base, "--table", "customers_gold"])
    assert missing.exit_code == 3 and "does not exist yet" in missing.stderr
