"""The SDP driver's pure parts: launcher settings merged, flow events read into table statuses."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from pipelines.ldp.sdp_levels import FlowTracker, merge_launcher_conf


def test_every_launcher_setting_chunk_survives():
    env = {"PYSPARK_REMOTE_INIT_CONF_LEN": "2",
           "PYSPARK_REMOTE_INIT_CONF_0": json.dumps({"spark.connect.grpc.binding.address": "127.0.0.1"}),
           "PYSPARK_REMOTE_INIT_CONF_1": json.dumps({"spark.ui.enabled": "false"})}
    merge_launcher_conf(env)
    assert env == {"PYSPARK_REMOTE_INIT_CONF_LEN": "1", "PYSPARK_REMOTE_INIT_CONF_0": json.dumps(
        {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.ui.enabled": "false"})}


def test_flow_events_become_statuses_durations_and_errors():
    start = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    tracker = FlowTracker()
    for seconds, message in [
            (0, "Flow spark_catalog.retail.a is QUEUED."), (3, "Flow spark_catalog.retail.a is STARTING."),
            (5, "Flow spark_catalog.retail.a has COMPLETED."),
            (6, "Flow 'spark_catalog.retail.b' has FAILED.\nError: [UNRESOLVED_COLUMN] x"),
            (7, "Flow 'spark_catalog.retail.b' has FAILED more than 2 times and will not be restarted."),
            (8, "Flow 'spark_catalog.retail.c' SKIPPED due to upstream failure(s)."),
            (9, "Run is FAILED.")]:
        tracker.update(message, start + timedelta(seconds=seconds))
    assert tracker.status == {"a": "success", "b": "failed", "c": "skipped"}
    assert tracker.seconds["a"] == 2.0
    assert tracker.errors == {"b": "[UNRESOLVED_COLUMN] x", "c": "upstream table failed"}


def test_sdp_summary_has_the_spark_runners_shape(example_project):
    from pipelines.core.graph import Selection
    from pipelines.engine.project import load_project
    from pipelines.ldp.sdp import summary

    plan = load_project(example_project / "config.yml", Selection(select=("+customers_silver",))).plan
    raw = {"status": "success",
           "datasets": {"customers_bronze": {"status": "success", "seconds": 1.5, "error": None},
                        "customers_silver": {"status": "failed", "seconds": 2.0, "error": "[X] boom"}},
           "rows": {"customers_bronze": 17, "customers_silver": None},
           "failures": {"customers_silver_quarantine": {"email_valid": 2, "customer_id_not_null": 1}}}
    result = summary(plan, raw).to_dict()
    assert result["status"] == "failed" and result["runner"] == "sdp"
    bronze, silver = result["tables"]
    assert bronze == {"name": "customers_bronze", "layer": "bronze", "status": "success", "rows_written": 17,
                      "rows_quarantined": 0, "rows_dropped": 0, "checks": [], "seconds": 1.5, "error": None,
                      "monitor": None}
    assert (silver["status"], silver["error"], silver["rows_written"]) == ("failed", "[X] boom", 0)
    assert silver["checks"] == [{"name": "customer_id_not_null", "criticality": "error", "failed": 1},
                                {"name": "email_not_null", "criticality": "error", "failed": 0},
                                {"name": "email_valid", "criticality": "error", "failed": 2}]


def test_a_table_holding_fewer_rows_than_its_query_gives_is_not_a_success(example_project):
    """The rerun bug's signature (apache/spark#57897): every flow COMPLETED, the stored silver table
    is empty. Row counts come from the stored tables, and a shortfall against the query over the
    stored inputs fails the table, whatever its flows reported."""
    from pipelines.core.graph import Selection
    from pipelines.engine.project import load_project
    from pipelines.ldp.sdp import summary

    plan = load_project(example_project / "config.yml", Selection(select=("+customers_silver",))).plan
    completed = {"status": "success", "seconds": 1.0, "error": None}
    raw = {"status": "success",
           "datasets": {name: completed for name in
                        ("customers_bronze", "customers_silver", "customers_silver_quarantine")},
           "rows": {"customers_bronze": 17, "customers_silver": 0, "customers_silver_quarantine": 4},
           "expected": {"customers_bronze": 17, "customers_silver": 12, "customers_silver_quarantine": 4}}
    result = summary(plan, raw).to_dict()
    assert result["status"] == "failed"
    bronze, silver = result["tables"]
    assert (bronze["status"], bronze["rows_written"]) == ("success", 17)
    assert (silver["status"], silver["rows_written"]) == ("failed", 0)
    assert silver["error"].startswith("customers_silver holds 0 row(s), fewer than the 12 its query gives")

    raw["rows"]["customers_silver"] = 12  # the same run with the rows in place is a success
    assert summary(plan, raw).to_dict()["status"] == "success"
