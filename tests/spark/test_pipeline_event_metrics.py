"""A Databricks pipeline update's event-log numbers reach the run record and the run report, as a local
run's do (the report reads the quarantine sample through the session: the shared local one here)."""
from __future__ import annotations

import json
from pathlib import Path

import databricks.labs.dqx.engine  # noqa: F401 - imported before WorkspaceClient is patched below
from click.testing import CliRunner

from pipelines.engine.cli import cli
from tests.unit.test_pipeline_update import SILVER_CHECKS, client, progress


def test_the_record_and_report_of_a_pipeline_run_show_the_event_log_numbers(spark, example_project, monkeypatch):
    import databricks.sdk

    events = [progress("customers_silver__checked", "COMPLETED", "2026-11-23T10:00:02Z", rows=10,
                       expectations=SILVER_CHECKS),
              progress("customers_silver", "COMPLETED", "2026-11-23T10:00:04Z", rows=7),
              progress("customers_silver_quarantine", "COMPLETED", "2026-11-23T10:00:05Z", rows=3)]
    spark.sql("CREATE SCHEMA IF NOT EXISTS evlog")  # what the update stored, as the report reads it
    spark.createDataFrame([("c1",)], "customer_id string").write.mode("overwrite").saveAsTable("evlog.customers_silver")
    spark.createDataFrame([("c9", [("email_not_null", "Column 'email' value is null")])],
                          "customer_id string, _errors array<struct<name:string,message:string>>"
                          ).write.mode("overwrite").saveAsTable("evlog.customers_silver_quarantine")
    w = client(["RUNNING", "COMPLETED"], events)
    monkeypatch.setattr(databricks.sdk, "WorkspaceClient", lambda: w)
    monkeypatch.setattr("pipelines.ldp.update.time.sleep", lambda s: None)
    result = CliRunner().invoke(cli, ["--config", str(example_project / "config.yml"), "--runner", "pipeline",
                                      "--pipeline-id", "p1", "--select", "customers_silver", "--format", "json",
                                      "--state-dir", str(example_project / ".ldp"), "--schema", "evlog"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    record = json.loads((example_project / ".ldp/runs/latest.json").read_text())
    assert record["summary"]["tables"][0]["rows_written"] == 7
    assert record["summary"]["tables"][0]["checks"][1] == {"name": "email_not_null", "criticality": "error",
                                                           "failed": 2, "passed": 8}
    report = Path(summary["report"]).read_text()
    assert "email_not_null: Column &#x27;email&#x27; value is null" in report or \
        "email_not_null: Column 'email' value is null" in report  # the quarantine sample
    assert ">7<" in report.replace(" ", "")  # rows written, from the event log
