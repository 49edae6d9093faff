"""The SDP driver's pure parts: launcher settings merged, flow events read into table statuses, a
finished run holding its server for the CLI's consumers until released (or until the CLI is gone)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest

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


def test_a_failed_flow_that_sdp_restarts_and_completes_is_a_success():
    # seen in a run: a JVM glitch failed a flow's first attempt, SDP restarted it and it completed, yet the
    # run was reported failed (exit 3); a dataset whose other flow failed for good stays failed
    start = datetime(2026, 12, 7, 15, tzinfo=timezone.utc)
    tracker = FlowTracker(aliases={"t_eu": "t", "t_us": "t"})
    for seconds, message in [
            (0, "Flow spark_catalog.cdc.row_changes is STARTING."), (1, "Flow spark_catalog.cdc.row_changes is RUNNING."),
            (2, "Flow 'spark_catalog.cdc.row_changes' has FAILED.\nError: java.lang.NoSuchMethodException: x"),
            (6, "Flow spark_catalog.cdc.row_changes is STARTING."), (7, "Flow spark_catalog.cdc.row_changes is RUNNING."),
            (9, "Flow spark_catalog.cdc.row_changes has COMPLETED."),
            (1, "Flow spark_catalog.cdc.t_eu is STARTING."), (2, "Flow 't_eu' has FAILED.\nError: [X] eu"),
            (2, "Flow spark_catalog.cdc.t_us is STARTING."), (3, "Flow 't_us' has FAILED.\nError: [Y] us"),
            (4, "Flow spark_catalog.cdc.t_us is STARTING."), (5, "Flow spark_catalog.cdc.t_us has COMPLETED."),
            (6, "Flow 't_eu' has FAILED more than 2 times and will not be restarted.")]:
        tracker.update(message, start + timedelta(seconds=seconds))
    assert tracker.status == {"row_changes": "success", "t": "failed"}
    assert tracker.seconds["row_changes"] == 9.0  # both attempts
    assert tracker.errors == {"t": "[X] eu"}
    tracker.update("Flow spark_catalog.cdc.t_eu is STARTING.", start)  # had it been restarted: t_us's failure
    tracker.update("Flow 't_us' has FAILED.\nError: [Y] us", start)
    assert (tracker.status, tracker.errors) == ({"row_changes": "success", "t": "failed"}, {"t": "[Y] us"})


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
                      "rows_quarantined": 0, "rows_dropped": 0, "rows_total": 17,
                      "checks": [{"name": "malformed_record", "criticality": "error", "failed": 0}], "seconds": 1.5,
                      "error": None, "monitor": None}
    # failed in this run: no counts at all, not the older run's rows and failed checks it still stores
    assert silver == {"name": "customers_silver", "layer": "silver", "status": "failed", "rows_written": None,
                      "seconds": 2.0, "error": "[X] boom", "monitor": None}


def test_a_succeeded_streaming_table_counts_what_this_run_appended_and_its_total(example_project):
    """As on the Spark runner, a streaming table's rows (and quarantined rows, check failures) are
    those this run appended; its total is `rows_total`. A table skipped by a failure has no counts."""
    from pipelines.core.graph import Selection
    from pipelines.core.results import RunResult
    from pipelines.engine.project import load_project
    from pipelines.ldp.sdp import summary

    plan = load_project(example_project / "config.yml", Selection(select=("+customers_gold",)),
                        mode="streaming").plan
    assert [(t.name, t.streaming) for t in plan.tables] == [
        ("customers_bronze", True), ("customers_silver", False), ("customers_gold", False)]
    completed = {"status": "success", "seconds": 1.0, "error": None}
    raw = {"status": "success",
           "datasets": {"customers_bronze": completed, "customers_silver": completed,
                        "customers_silver_quarantine": completed,
                        "customers_gold": {"status": "skipped", "seconds": 0.0, "error": None}},
           "rows": {"customers_bronze": 20, "customers_silver": 12, "customers_silver_quarantine": 4},
           "rows_before": {"customers_bronze": 17},
           "failures": {"customers_silver_quarantine": {"email_valid": 2}}}
    run = RunResult("sdp", run_id="made-before-the-run", started_at=100.0)
    assert summary(plan, raw, run) is run and run.run_id == "made-before-the-run" and run.started_at == 100.0
    assert run.finished_at is not None and run.finished_at > 100.0
    bronze, silver, gold = (t.to_dict() for t in run.tables)
    assert (bronze["rows_written"], bronze["rows_total"]) == (3, 20)  # appended now, held in all
    assert (silver["rows_written"], silver["rows_total"], silver["rows_quarantined"]) == (12, 12, 4)
    assert {c["name"]: c["failed"] for c in silver["checks"]}["email_valid"] == 2
    assert gold["status"] == "skipped" and gold["rows_written"] is None
    assert not {"rows_total", "rows_quarantined", "checks"} & set(gold)


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
    assert (silver["status"], silver["rows_written"]) == ("failed", None)
    assert silver["error"].startswith("customers_silver holds 0 row(s), fewer than the 12 its query gives")

    raw["rows"]["customers_silver"] = 12  # the same run with the rows in place is a success
    assert summary(plan, raw).to_dict()["status"] == "success"


def test_a_flow_failing_in_its_write_task_keeps_the_users_error():
    """On Delta the event's first message names only the write task; its cause is the user's error."""
    from tests.unit.test_flow_errors import RAISED

    tracker = FlowTracker()
    tracker.update(RAISED, datetime(2026, 12, 3, 21, 28, tzinfo=timezone.utc))
    assert tracker.status == {"ev_clean_a": "failed"}
    assert tracker.errors["ev_clean_a"].startswith("[TASK_WRITE_FAILED] Task failed while writing rows to file:")
    assert tracker.errors["ev_clean_a"].endswith("; caused by: [USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001")


def test_an_additive_contracts_new_columns_come_from_the_stored_tables_columns(example_project):
    """customers_gold's contract is additive: what the SDP driver read of its stored columns, less the
    declared ones and DQX's, is reported (JSON and text), as the Spark runner reports it."""
    from pipelines.core.graph import Selection
    from pipelines.engine.project import load_project
    from pipelines.engine.render import summary_text
    from pipelines.ldp.sdp import summary

    plan = load_project(example_project / "config.yml", Selection(select=("customers_gold",))).plan
    raw = {"status": "success", "datasets": {"customers_gold": {"status": "success", "seconds": 1.0, "error": None}},
           "rows": {"customers_gold": 4},
           "columns": {"customers_gold": ["country", "customers", "first_signup", "region", "_warnings"]}}
    run = summary(plan, raw)
    assert run.tables[0].to_dict()["new_columns"] == ["region"]
    assert "New columns:\n  customers_gold: region (not in columns:, let through by contract: additive)" in (
        summary_text(run))
    raw["columns"]["customers_gold"] = ["country", "customers", "first_signup"]
    assert "new_columns" not in summary(plan, raw).tables[0].to_dict()


class Said(logging.Handler):
    """The lines the driver logs, as the runner reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def readouterr(self) -> str:
        said, self.lines = "".join(line + "\n" for line in self.lines), []
        return said


@pytest.fixture
def said() -> Iterator[Said]:
    from pipelines.ldp.sdp_levels import log

    handler = Said()
    log.addHandler(handler)
    level, log.level = log.level, logging.INFO
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def test_a_held_run_writes_its_result_then_waits_for_its_release_or_the_end_of_its_cli(tmp_path, said):
    from pipelines.engine.sdp_driver import deliver, parse
    from pipelines.ldp.sdp_process import HELD

    release, result = tmp_path / "release", tmp_path / "result.json"
    args = parse(["run", "--spec", "spec.yml", "--result", str(result), "--tables", "a",
                  "--hold-until", str(release), "--parent", str(os.getpid())])
    threading.Timer(0.5, release.touch).start()
    started = time.monotonic()
    deliver(args, {"status": "success"})
    assert time.monotonic() - started >= 0.45  # held until the release, its result already written
    assert json.loads(result.read_text()) == {"status": "success"} and said.readouterr() == HELD + "\n"

    release.unlink()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    args.parent = gone.pid
    started = time.monotonic()
    deliver(args, {"status": "success"})  # its CLI is gone: nobody will release it
    assert time.monotonic() - started < 5 and said.readouterr() == HELD + "\n"

    args.parent = os.getpid()
    deliver(args, {"status": "error", "errors": ["x"]})  # nothing was run: nothing to hold
    assert said.readouterr() == "" and json.loads(result.read_text())["status"] == "error"
