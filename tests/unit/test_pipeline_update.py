"""`--runner pipeline`: the exact workspace requests, with an autospec'd WorkspaceClient."""
from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import call, create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import ApiClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.pipelines import (
    GetPipelineResponse, GetUpdateResponse, PipelinesAPI,
    StartUpdateResponse, UpdateInfo, UpdateInfoState)

from pipelines.engine.cli import cli
from pipelines.core.errors import UsageError
from pipelines.core.graph import Selection
from pipelines.engine.project import load_project
from pipelines.ldp.update import PipelineUpdate

REPO_CONFIG = "config.yml"


def client(states: list[str], events: list[dict] = (), page_size: int | None = None,
           created: int | None = None) -> WorkspaceClient:
    """A workspace whose update goes through `states` and whose event log serves `events` (as the REST
    API does: JSON pages, oldest first, `page_size` events a page)."""
    w = create_autospec(WorkspaceClient, instance=True)
    w.pipelines = create_autospec(PipelinesAPI, instance=True)
    w.api_client = create_autospec(ApiClient, instance=True)
    w.pipelines.get.return_value = GetPipelineResponse(pipeline_id="p1", name="retail_demo [dev]")
    w.pipelines.start_update.return_value = StartUpdateResponse(update_id="u1")
    w.pipelines.get_update.side_effect = [
        GetUpdateResponse(update=UpdateInfo(state=UpdateInfoState(s), creation_time=created)) for s in states]
    events = list(events)
    size = page_size or max(len(events), 1)

    def serve(method, path, query=None, headers=None):  # a page token carries its query, as the API's do
        since, _, start = query.get("page_token", "|0").rpartition("|")
        since = since or (query.get("filter") or "").partition("timestamp >= ")[2].strip("'")
        matching = [e for e in events if not since or e["timestamp"] >= since]
        begin = int(start)
        page = {"events": matching[begin:begin + size]}
        if begin + size < len(matching):
            page["next_page_token"] = f"{since}|{begin + size}"
        return page

    w.api_client.do.side_effect = serve
    return w


def event(flow: str, message: str, at: str, update: str = "u1", level: str = "INFO",
          details: dict | None = None, error: dict | None = None) -> dict:
    """A flow_progress event as the events API returns it (docs "Pipeline event log schema")."""
    out = {"id": f"{flow}-{at}", "event_type": "flow_progress", "message": message, "timestamp": at,
           "level": level, "origin": {"update_id": update, "flow_name": f"main.retail.{flow}",
                                      "dataset_name": flow}}
    if details is not None:
        out["details"] = {"flow_progress": details}
    if error is not None:
        out["error"] = error
    return out


def progress(flow: str, status: str, at: str, rows: int | None = None, expectations: list | None = None,
             **kwargs) -> dict:
    details: dict = {"status": status}
    if rows is not None:
        details["metrics"] = {"num_output_rows": rows}
    if expectations is not None:
        details["data_quality"] = {"dropped_records": 0, "expectations": [
            {"name": name, "dataset": f"main.retail.{dataset}", "passed_records": passed, "failed_records": failed}
            for dataset, name, passed, failed in expectations]}
    verb = "is" if status in ("QUEUED", "STARTING", "RUNNING") else "has"
    return event(flow, f"Flow '{flow}' {verb} {status}.", at, details=details, **kwargs)


EVENTS = ("GET", "/api/2.0/pipelines/p1/events")
FIRST_PAGE = {"order_by": ["timestamp asc"], "max_results": 250}


def plan(example_project, **selection):
    return load_project(example_project / "config.yml", Selection(**selection)).plan


def test_a_tag_selection_refreshes_exactly_its_tables_and_quarantine_tables(example_project):
    w = client(["RUNNING", "COMPLETED"])
    update = PipelineUpdate(w, "p1", sleep=lambda s: None, echo=lambda line: None)
    update_id = update.start(plan(example_project, tags=("silver",)), full_refresh=False)
    assert update_id == "u1"
    w.pipelines.get.assert_called_once_with("p1")
    w.pipelines.start_update.assert_called_once_with(
        "p1", full_refresh=None, full_refresh_selection=None,
        refresh_selection=["customers_history", "customers_history_quarantine", "customers_silver",
                           "customers_silver_quarantine", "orders_silver", "orders_silver_quarantine"])


def test_full_refresh_of_a_selection_and_of_everything(example_project):
    w = client([])
    update = PipelineUpdate(w, "p1", echo=lambda line: None)
    update.start(plan(example_project, select=("customers_gold",)), full_refresh=True)
    update.start(plan(example_project), full_refresh=True)
    update.start(plan(example_project), full_refresh=False)
    assert w.pipelines.start_update.call_args_list == [
        call("p1", full_refresh=None, full_refresh_selection=["customers_gold"], refresh_selection=None),
        call("p1", full_refresh=True, full_refresh_selection=None, refresh_selection=None),
        call("p1", full_refresh=False, full_refresh_selection=None, refresh_selection=None)]


def test_follow_polls_until_the_update_ends_and_reports_each_flow(example_project):
    events = [event("customers_bronze", "Flow 'customers_bronze' is RUNNING.", "2026-11-23T10:00:00Z"),
              event("customers_bronze", "Flow 'customers_bronze' has COMPLETED.", "2026-11-23T10:00:05Z"),
              event("other", "Flow 'other' has COMPLETED.", "2026-11-23T09:00:00Z", update="older")]
    w = client(["WAITING_FOR_RESOURCES", "RUNNING", "COMPLETED"], events)
    sleeps, lines = [], []
    update = PipelineUpdate(w, "p1", poll_seconds=7, sleep=sleeps.append, echo=lines.append)
    the_plan = plan(example_project, select=("customers_bronze",))
    state = update.follow("u1")
    assert state == "COMPLETED" and sleeps == [7, 7]
    assert w.pipelines.get_update.call_args_list == [call("p1", "u1")] * 3
    since = {**FIRST_PAGE, "filter": "timestamp >= '2026-11-23T10:00:05Z'"}
    assert w.api_client.do.call_args_list == [
        call(*EVENTS, query=FIRST_PAGE, headers={"Accept": "application/json"}),
        call(*EVENTS, query=since, headers={"Accept": "application/json"}),
        call(*EVENTS, query=since, headers={"Accept": "application/json"})]
    assert sum("customers_bronze" in line for line in lines) == 2  # each event printed once
    summary = update.summary(the_plan, "u1", state).to_dict()
    assert summary["status"] == "success"
    # no metric: rows null; customers_bronze declares its schema, so it carries the malformed_record check
    assert summary["tables"] == [{"name": "customers_bronze", "layer": "bronze", "status": "success",
                                  "rows_written": None, "rows_dropped": 0,
                                  "checks": [{"name": "malformed_record", "criticality": "error", "failed": None}],
                                  "seconds": 5.0, "error": None, "monitor": None}]


def test_a_failed_flow_fails_the_summary_with_its_error(example_project):
    events = [event("customers_silver", "Flow 'customers_silver' has FAILED.", "2026-11-23T10:00:05Z",
                    level="ERROR")]
    w = client(["FAILED"], events)
    update = PipelineUpdate(w, "p1", sleep=lambda s: None, echo=lambda line: None)
    summary = update.summary(plan(example_project, select=("customers_silver",)), "u1", update.follow("u1")).to_dict()
    assert summary["status"] == "failed" and summary["state"] == "FAILED"
    assert summary["tables"][0]["status"] == "failed"
    assert summary["tables"][0]["error"] == "Flow 'customers_silver' has FAILED."


def test_an_unknown_pipeline_is_a_usage_error(example_project):
    w = client([])
    w.pipelines.get.side_effect = NotFound("Pipeline p9 does not exist")
    with pytest.raises(UsageError, match="p9"):
        PipelineUpdate(w, "p9", echo=lambda line: None).start(plan(example_project), full_refresh=False)
    w.pipelines.start_update.assert_not_called()


def test_cli_pipeline_runner_needs_a_pipeline_id(example_project):
    result = CliRunner().invoke(cli, ["--config", str(example_project / "config.yml"), "--runner", "pipeline"])
    assert result.exit_code == 2 and "--pipeline-id" in result.stderr


def test_cli_pipeline_runner_end_to_end_exit_codes(example_project, monkeypatch):
    import databricks.sdk

    w = client(["RUNNING", "FAILED"])
    monkeypatch.setattr(databricks.sdk, "WorkspaceClient", lambda: w)
    monkeypatch.setattr("pipelines.ldp.update.time.sleep", lambda s: None)
    result = CliRunner().invoke(cli, ["--config", str(example_project / "config.yml"), "--runner", "pipeline",
                                      "--pipeline-id", "p1", "--tags", "gold", "--format", "json"])
    assert result.exit_code == 3, result.stderr
    w.pipelines.start_update.assert_called_once_with(
        "p1", full_refresh=None, full_refresh_selection=None,
        refresh_selection=["customer_orders_gold", "customers_gold"])
    assert '"state": "FAILED"' in result.stdout
    # a pipeline update writes no Lakebase sink: the job's `sinks publish` task does, from the stored tables
    assert json.loads(result.stdout)["sinks"] == (
        "not written by --runner pipeline: ldp_engine sinks publish (the job's sinks task)")
    report = Path(json.loads(result.stdout)["report"]).read_text()  # every runner's run gets its page
    assert "not written by --runner pipeline" in report and "customers_gold" in report


def test_after_the_update_consumers_get_each_succeeded_table_then_the_run(example_project):
    from pipelines.core.seam import Consumers, replay

    events = [event("customers_bronze", "Flow 'customers_bronze' is COMPLETED.", "2026-11-23T10:00:05Z"),
              event("customers_silver", "Flow 'customers_silver' has FAILED.", "2026-11-23T10:00:06Z",
                    level="ERROR")]
    update = PipelineUpdate(client(["FAILED"], events), "p1", sleep=lambda s: None, echo=lambda line: None)
    the_plan = plan(example_project, select=("+customers_silver",))
    seen: list[tuple[str, object]] = []

    class Recorder:
        name = "recorder"

        def on_table_written(self, table, result, read):
            seen.append((table.name, read()))

        def on_run_finished(self, run):
            seen.append(("run", run.status))

    run = replay(the_plan, update.summary(the_plan, "u1", update.follow("u1")), Consumers([Recorder()]),
                 read=lambda name: f"stored {name}")
    assert seen == [("customers_bronze", "stored customers_bronze"), ("run", "failed")]
    assert run.to_dict()["tables"][1]["status"] == "failed"


@pytest.mark.parametrize("deployed", ["streaming", None])
def test_a_mode_the_pipeline_is_not_deployed_with_stops_before_the_update(example_project, deployed):
    from databricks.sdk.service.pipelines import PipelineSpec

    w = client(["COMPLETED"])
    configuration = {"ldp.mode": deployed} if deployed else {"ldp.config": "/x/config.yml"}
    w.pipelines.get.return_value = GetPipelineResponse(
        pipeline_id="p1", name="retail_demo [dev]", spec=PipelineSpec(configuration=configuration))
    update = PipelineUpdate(w, "p1", sleep=lambda s: None, echo=lambda line: None)
    asked = "batch" if deployed == "streaming" else "streaming"
    the_plan = load_project(example_project / "config.yml", Selection(), asked).plan
    with pytest.raises(UsageError, match=f"deployed with ldp.mode={deployed or 'batch'}, but --mode {asked}"):
        update.start(the_plan, full_refresh=False)
    assert w.pipelines.get.call_args_list == [call("p1")]
    w.pipelines.start_update.assert_not_called()
    streaming = load_project(example_project / "config.yml", Selection(), "streaming").plan
    if deployed == "streaming":  # the matching mode starts the update
        assert update.start(streaming, full_refresh=False) == "u1"


SILVER_CHECKS = [("customers_silver__checked", "customer_id_not_null", 9, 1),
                 ("customers_silver__checked", "email_not_null", 8, 2),
                 ("customers_silver__checked", "email_valid", 7, 1)]


def finished(example_project, events, states=("COMPLETED",), select=("customers_silver",), **kwargs):
    w = client(list(states), events, **kwargs)
    update = PipelineUpdate(w, "p1", sleep=lambda s: None, echo=lambda line: None)
    the_plan = plan(example_project, select=select)
    return w, update.summary(the_plan, "u1", update.follow("u1")).to_dict()


def test_a_successful_update_reports_rows_quarantine_and_each_expectation_from_the_event_log(example_project):
    events = [progress("customers_silver", "RUNNING", "2026-11-23T10:00:01Z"),
              progress("customers_silver__checked", "COMPLETED", "2026-11-23T10:00:02Z", rows=10,
                       expectations=SILVER_CHECKS),
              progress("customers_silver", "COMPLETED", "2026-11-23T10:00:04.500Z", rows=7),
              progress("customers_silver_quarantine", "COMPLETED", "2026-11-23T10:00:05Z", rows=3)]
    _, summary = finished(example_project, events)
    assert summary["status"] == "success"
    assert summary["tables"] == [{
        "name": "customers_silver", "layer": "silver", "status": "success", "rows_written": 7,
        "rows_quarantined": 3, "rows_dropped": 0, "seconds": 3.5, "error": None, "monitor": None,
        "checks": [{"name": "customer_id_not_null", "criticality": "error", "failed": 1, "passed": 9},
                   {"name": "email_not_null", "criticality": "error", "failed": 2, "passed": 8},
                   {"name": "email_valid", "criticality": "error", "failed": 1, "passed": 7}]}]


def test_a_failed_flow_reports_its_exception_and_no_numbers(example_project):
    error = {"exceptions": [{"class_name": "org.apache.spark.SparkException",
                             "message": "[CAST_INVALID_INPUT] The value 'x' cannot be cast\n  at ..."}],
             "fatal": True}
    events = [progress("customers_silver__checked", "COMPLETED", "2026-11-23T10:00:02Z", rows=10,
                       expectations=SILVER_CHECKS),
              progress("customers_silver", "FAILED", "2026-11-23T10:00:03Z", rows=4, level="ERROR", error=error)]
    _, summary = finished(example_project, events, states=["FAILED"])
    [table] = summary["tables"]
    assert summary["status"] == "failed" and table["status"] == "failed"
    assert table["error"] == "org.apache.spark.SparkException: [CAST_INVALID_INPUT] The value 'x' cannot be cast"
    assert table["rows_written"] is None and "checks" not in table and "rows_quarantined" not in table


def test_a_retried_flow_counts_only_its_last_attempt(example_project):
    events = [progress("customers_silver", "RUNNING", "2026-11-23T10:00:00Z", rows=5),
              progress("customers_silver", "FAILED", "2026-11-23T10:00:01Z", error={"exceptions": [
                  {"class_name": "java.io.IOException", "message": "connection reset"}]}),
              progress("customers_silver", "STARTING", "2026-11-23T10:00:10Z"),
              progress("customers_silver", "RUNNING", "2026-11-23T10:00:11Z", rows=4),
              progress("customers_silver", "RUNNING", "2026-11-23T10:00:12Z", rows=3),  # a second micro-batch
              progress("customers_silver", "COMPLETED", "2026-11-23T10:00:13Z"),
              progress("customers_silver_quarantine", "COMPLETED", "2026-11-23T10:00:13Z", rows=0)]
    _, summary = finished(example_project, events)
    [table] = summary["tables"]
    assert (table["status"], table["error"], table["rows_written"], table["rows_quarantined"]) == (
        "success", None, 7, 0)
    assert table["seconds"] == 3.0  # the attempt that stayed
    assert [check["failed"] for check in table["checks"]] == [None, None, None]  # never reported: null, not 0


def test_a_full_refresh_reports_the_same_way(example_project):
    events = [progress("customers_bronze", "COMPLETED", "2026-11-23T10:00:02Z", rows=12),
              progress("customers_silver__checked", "COMPLETED", "2026-11-23T10:00:03Z", expectations=SILVER_CHECKS),
              progress("customers_silver", "COMPLETED", "2026-11-23T10:00:04Z", rows=7),
              progress("customers_silver_quarantine", "COMPLETED", "2026-11-23T10:00:04Z", rows=3)]
    w = client(["COMPLETED"], events)
    update = PipelineUpdate(w, "p1", sleep=lambda s: None, echo=lambda line: None)
    the_plan = plan(example_project, select=("+customers_silver",))
    update.start(the_plan, full_refresh=True)
    summary = update.summary(the_plan, "u1", update.follow("u1")).to_dict()
    w.pipelines.start_update.assert_called_once_with(
        "p1", full_refresh=None, refresh_selection=None, full_refresh_selection=[
            "customers_bronze", "customers_bronze_quarantine", "customers_silver", "customers_silver_quarantine"])
    # customers_bronze_quarantine (malformed records) reported no progress: its count is unknown, not 0
    assert [(t["name"], t["rows_written"], t.get("rows_quarantined")) for t in summary["tables"]] == [
        ("customers_bronze", 12, None), ("customers_silver", 7, 3)]


def test_events_are_read_page_by_page_from_the_update_start_sending_only_the_token_after_the_first(
        example_project):
    events = [progress("customers_silver", "RUNNING", f"2026-11-23T10:00:0{i}Z", rows=1) for i in range(5)]
    events += [progress("customers_silver", "COMPLETED", "2026-11-23T10:00:06Z"),
               progress("customers_silver", "COMPLETED", "2026-11-23T09:00:00Z", update="u0", rows=99)]
    w, summary = finished(example_project, events, page_size=2, created=1795428000000)  # 2026-11-23T10:00:00Z
    headers = {"Accept": "application/json"}
    first = {**FIRST_PAGE, "filter": "timestamp >= '2026-11-23T10:00:00.000Z'"}
    assert w.api_client.do.call_args_list == [
        call(*EVENTS, query=first, headers=headers),
        call(*EVENTS, query={"page_token": "2026-11-23T10:00:00.000Z|2", "max_results": 250}, headers=headers),
        call(*EVENTS, query={"page_token": "2026-11-23T10:00:00.000Z|4", "max_results": 250}, headers=headers)]
    assert summary["tables"][0]["rows_written"] == 5  # the older update's 99 rows are not this run's


def test_replay_hands_tables_over_a_few_at_once_and_the_run_after_all_of_them():
    """A consumer mostly waits on Spark: replay's tables overlap their waits, as the Spark runner's
    workers do; the run is handed over only when every table's consumers are done."""
    import threading

    from pipelines.core.config import load_config
    from pipelines.core.plan import build_plan
    from pipelines.core.results import RunResult, TableResult
    from pipelines.core.seam import TABLES_AT_ONCE, Consumers, replay
    from pipelines.core.vocabulary import TableStatus

    the_plan = build_plan(load_config(Path(__file__).parents[2] / "config.yml"))
    names = [t.name for t in the_plan.tables]
    assert len(names) > TABLES_AT_ONCE
    run = RunResult("sdp", tables=[TableResult(n, "silver", TableStatus.SUCCESS, 1, 0, 0, []) for n in names])
    together = threading.Barrier(TABLES_AT_ONCE, timeout=10)  # broken (an error) if they came one by one
    seen: list[str] = []

    class Waiting:
        name = "waiting"

        def on_table_written(self, table, result, read):
            if len(seen) < TABLES_AT_ONCE:
                seen.append(table.name)
                together.wait()
            else:
                seen.append(table.name)

        def on_run_finished(self, run):
            seen.append("run")

    replay(the_plan, run, Consumers([Waiting()]), read=lambda name: name)
    assert sorted(seen[:-1]) == sorted(names) and seen[-1] == "run"
    assert all(not t.consumer_errors for t in run.tables), [t.consumer_errors for t in run.tables]


def flow_progress(flow: str, dataset: str, status: str, at: str, **kwargs) -> dict:
    """A flow_progress event of an append flow: named `flow`, writing `dataset`."""
    out = progress(flow, status, at, **kwargs)
    out["origin"]["dataset_name"] = f"main.retail.{dataset}"
    return out


def flows_summary(tmp_path, events, states=("COMPLETED",)) -> dict:
    from tests.conftest import write_project
    from tests.spark import test_append_flows as flows

    config = write_project(tmp_path, flows.config().replace("SCHEMA", "retail"), flows.MODULES)
    the_plan = load_project(config, Selection(select=("orders",)), "streaming").plan
    update = PipelineUpdate(client(list(states), events), "p1", sleep=lambda s: None, echo=lambda line: None)
    return update.summary(the_plan, "u1", update.follow("u1")).to_dict()


def test_a_table_with_flows_reports_each_flows_rows_and_their_totals(tmp_path):
    """Each append flow (and its flow into the quarantine) reports under its own name: the table's rows
    are their sum, and each flow's are listed, as the Spark runner lists them."""
    checks = [("orders", "positive_amount", 2, 1)]
    events = [flow_progress("eu__checked", "eu__checked", "COMPLETED", "2026-11-23T10:00:01Z", rows=3,
                            expectations=checks),
              flow_progress("eu", "orders", "RUNNING", "2026-11-23T10:00:01Z"),
              flow_progress("eu", "orders", "COMPLETED", "2026-11-23T10:00:03Z", rows=2),
              flow_progress("eu__quarantine", "orders_quarantine", "COMPLETED", "2026-11-23T10:00:03Z", rows=1),
              flow_progress("us", "orders", "COMPLETED", "2026-11-23T10:00:04Z", rows=1),
              flow_progress("us__quarantine", "orders_quarantine", "COMPLETED", "2026-11-23T10:00:04Z", rows=0),
              flow_progress("history", "orders", "COMPLETED", "2026-11-23T10:00:05Z", rows=1),
              flow_progress("history__quarantine", "orders_quarantine", "COMPLETED", "2026-11-23T10:00:05Z",
                            rows=1)]
    [table] = flows_summary(tmp_path, events)["tables"]
    assert (table["status"], table["rows_written"], table["rows_quarantined"], table["seconds"]) == (
        "success", 4, 2, 4.0)
    assert table["flows"] == {"eu": {"rows_written": 2, "rows_quarantined": 1},
                              "us": {"rows_written": 1, "rows_quarantined": 0},
                              "history": {"rows_written": 1, "rows_quarantined": 1}}
    assert table["checks"] == [{"name": "positive_amount", "criticality": "error", "failed": 1, "passed": 2}]


def test_one_failed_flow_fails_its_table_though_the_next_flow_completes(tmp_path):
    """A flow of the table failing is not taken for a retry of it by the next flow's events."""
    error = {"exceptions": [{"class_name": "java.io.IOException", "message": "eu bucket gone"}]}
    events = [flow_progress("eu", "orders", "FAILED", "2026-11-23T10:00:01Z", error=error),
              flow_progress("us", "orders", "RUNNING", "2026-11-23T10:00:02Z"),
              flow_progress("us", "orders", "COMPLETED", "2026-11-23T10:00:03Z", rows=1)]
    [table] = flows_summary(tmp_path, events, states=("FAILED",))["tables"]
    assert (table["status"], table["error"], table["rows_written"]) == (
        "failed", "java.io.IOException: eu bucket gone", None)
