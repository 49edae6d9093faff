"""`--runner pipeline`: the exact workspace requests, with an autospec'd WorkspaceClient."""
from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import call, create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.pipelines import (
    EventLevel, GetPipelineResponse, GetUpdateResponse, Origin, PipelineEvent, PipelinesAPI,
    StartUpdateResponse, UpdateInfo, UpdateInfoState)

from pipelines.engine.cli import cli
from pipelines.core.errors import UsageError
from pipelines.core.graph import Selection
from pipelines.engine.project import load_project
from pipelines.ldp.update import PipelineUpdate

REPO_CONFIG = "config.yml"


def client(states: list[str], events: list[PipelineEvent] = ()) -> WorkspaceClient:
    w = create_autospec(WorkspaceClient, instance=True)
    w.pipelines = create_autospec(PipelinesAPI, instance=True)
    w.pipelines.get.return_value = GetPipelineResponse(pipeline_id="p1", name="retail_demo [dev]")
    w.pipelines.start_update.return_value = StartUpdateResponse(update_id="u1")
    w.pipelines.get_update.side_effect = [GetUpdateResponse(update=UpdateInfo(state=UpdateInfoState(s)))
                                          for s in states]
    w.pipelines.list_pipeline_events.side_effect = lambda *a, **k: iter(events)
    return w


def event(flow: str, message: str, at: str, update: str = "u1", level: str = "INFO") -> PipelineEvent:
    return PipelineEvent(id=f"{flow}-{at}", event_type="flow_progress", message=message, timestamp=at,
                         level=EventLevel(level), origin=Origin(update_id=update, flow_name=flow))


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
        refresh_selection=["customers_silver", "customers_silver_quarantine", "orders_silver",
                           "orders_silver_quarantine"])


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
    assert w.pipelines.list_pipeline_events.call_args_list == [
        call("p1", order_by=["timestamp asc"]),
        call("p1", order_by=["timestamp asc"], filter="timestamp >= '2026-11-23T10:00:05Z'"),
        call("p1", order_by=["timestamp asc"], filter="timestamp >= '2026-11-23T10:00:05Z'")]
    assert sum("customers_bronze" in line for line in lines) == 2  # each event printed once
    summary = update.summary(the_plan, "u1", state).to_dict()
    assert summary["status"] == "success"
    assert summary["tables"] == [{"name": "customers_bronze", "layer": "bronze", "status": "success",
                                  "rows_written": None, "seconds": 5.0, "error": None, "monitor": None}]


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
