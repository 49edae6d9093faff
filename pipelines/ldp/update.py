"""`ldp_engine --runner pipeline --pipeline-id ID`: start a Lakeflow pipeline update for the selection.

A job's python_wheel_task is not a pipeline update: table definitions only take effect inside the
pipeline whose `libraries` hold the entry source (pipelines/ldp_pipeline.py). So the wheel entry
point validates and plans locally, asks the pipeline to refresh exactly the selected tables (the
pipeline defines all of them), follows the update to its end and exits with the CLI's codes.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any, Callable

from pipelines.core.errors import Problem, UsageError
from pipelines.core.config import TableConfig
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import CheckResult, RunResult, TableResult
from pipelines.core.vocabulary import OnError, TableStatus
from pipelines.quality.checks import named_checks

from .event_log import UpdateEvents, event_pages
from .registrar import CHECKED_SUFFIX, QUARANTINE_FLOW_SUFFIX, pipeline_datasets, table_datasets

log = logging.getLogger(__name__)
_UPDATE_TERMINAL = {"COMPLETED", "FAILED", "CANCELED"}


@dataclass
class PipelineUpdate:
    """One update of one pipeline through the workspace API; `sleep`/`echo` injectable for tests."""

    client: Any  # databricks.sdk.WorkspaceClient
    pipeline_id: str
    poll_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    echo: Callable[[str], None] = log.info
    events: UpdateEvents = field(default_factory=lambda: UpdateEvents(""))
    _since: str | None = None  # timestamp of the newest event seen: each poll asks only for newer ones

    def start(self, plan: Plan, full_refresh: bool) -> str:
        """Start the update: the whole pipeline, or refresh (or fully refresh) only the selection."""
        from databricks.sdk.errors import NotFound, PermissionDenied

        try:
            pipeline = self.client.pipelines.get(self.pipeline_id)
        except (NotFound, PermissionDenied) as exc:
            raise UsageError(Problem(f"pipeline {self.pipeline_id!r} cannot be used: {exc}",
                                     key="--pipeline-id", value=self.pipeline_id,
                                     hint="the id is in the pipeline's URL or `databricks pipelines list`"))
        self._check_mode(pipeline, plan)
        everything = plan.selects_everything
        selection = None if everything else pipeline_datasets(plan)
        response = self.client.pipelines.start_update(
            self.pipeline_id,
            full_refresh=full_refresh if everything else None,
            refresh_selection=None if full_refresh else selection,
            full_refresh_selection=selection if full_refresh else None)
        self.echo(f"started update {response.update_id} of pipeline {pipeline.name or self.pipeline_id}"
                  + ("" if everything else f": refreshing {', '.join(selection or [])}"))
        return str(response.update_id)

    def _check_mode(self, pipeline: Any, plan: Plan) -> None:
        """The pipeline's tables are batch or streaming as deployed (its `ldp.mode`): a different
        --mode would be ignored by the update, so it stops the run before anything starts."""
        configuration = (pipeline.spec.configuration if pipeline.spec is not None else None) or {}
        deployed = configuration.get("ldp.mode", "batch")
        if deployed != plan.mode:
            raise UsageError(Problem(
                f"pipeline {pipeline.name or self.pipeline_id!r} is deployed with ldp.mode={deployed}, "
                f"but --mode {plan.mode} was asked: its update would run in {deployed} mode",
                key="--mode", value=plan.mode,
                hint=f"run with --mode {deployed}, or deploy the bundle with --var mode={plan.mode}"))

    def follow(self, update_id: str) -> str:
        """Poll until the update ends, printing its flows' progress; return its final state."""
        self.events = UpdateEvents(update_id)
        while True:
            info = self.client.pipelines.get_update(self.pipeline_id, update_id).update
            if self._since is None and info.creation_time:  # not the pipeline's whole history
                self._since = _timestamp(info.creation_time)
            self._new_events()
            name = info.state.value if info.state is not None else "UNKNOWN"
            if name in _UPDATE_TERMINAL:
                return name
            self.sleep(self.poll_seconds)

    def _new_events(self) -> None:
        for event in event_pages(self.client, self.pipeline_id, self._since):
            if not self.events.add(event):
                continue
            self._since = event.get("timestamp") or self._since
            origin = event.get("origin") or {}
            if event.get("event_type") == "flow_progress" and origin.get("flow_name"):
                self.echo(f"{event.get('timestamp')} {event.get('message')}")
            elif event.get("level") == "ERROR":
                self.echo(f"error: {event.get('message')}")

    def summary(self, plan: Plan, update_id: str, state: str) -> RunResult:
        """The run result of a finished update, its numbers from the update's event log."""
        run = RunResult("pipeline", details={"pipeline_id": self.pipeline_id, "update_id": update_id,
                                             "state": state})
        for table in plan.tables:
            run.tables.append(table_result(plan, table, self.events, state == "COMPLETED"))
        if state != "COMPLETED" and all(t.succeeded for t in run.tables):
            run.errors.append(f"the update ended {state}")
        run.finished_at = time.time()
        return run

    def reader(self, plan: Plan) -> Callable[[str], Any]:
        """`read(name)` for after-table consumers: the stored table, through the job's own session
        (a wheel task on Databricks has one), opened on the first read only."""
        opening = threading.Lock()  # consumers read from several threads: the session is got once

        def read(name: str) -> Any:
            from pyspark.sql import SparkSession

            with opening:
                spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            parts = [p for p in (plan.pipeline.catalog, plan.pipeline.schema_name, name) if p]
            return spark.table(".".join(f"`{part}`" for part in parts))

        return read


def table_result(plan: Plan, table: TablePlan, events: UpdateEvents, completed: bool) -> TableResult:
    """One table of an update: status and error from its datasets' flows; rows written and
    quarantined, and each named check's failed rows, from their metrics (None where none was
    reported, and for a table that did not succeed: no stale numbers)."""
    config = table.config
    datasets = table_datasets(table)
    flows = [events.dataset(name) for name in datasets]
    main = flows[0]
    statuses = [flow.status for flow in flows if flow is not None]
    status = ("failed" if "failed" in statuses else main.status if main and main.status
              else "success" if completed else "skipped")
    result = TableResult(table.name, table.layer, TableStatus(status), rows_written=None,
                         rows_quarantined=None, rows_dropped=None, checks=None,
                         seconds=(main.seconds if main else None) or 0.0,
                         error=next((flow.error for flow in flows if flow is not None and flow.error), None))
    if status != "success":
        return result
    result.rows_written = main.rows if main else None
    quarantine = flows[1] if len(flows) > 1 else None
    result.rows_quarantined = (quarantine.rows if quarantine else None) if len(flows) > 1 else 0
    result.rows_dropped = None if config.on_error is OnError.DROP and config.has_expectations else 0
    names = [config.name + CHECKED_SUFFIX, *(flow.name + CHECKED_SUFFIX for flow in config.flows), *datasets]
    if table.append_flows:  # each flow's own rows: its flow, and its flow into the quarantine
        result.flows = {flow.name: _flow_counts(events, flow.name, config) for flow in table.append_flows}
    result.checks = []
    for name, criticality in named_checks(plan.config, config):
        counts = events.expectation(names, name)
        result.checks.append(CheckResult(name, criticality, counts.failed if counts else None,
                                         counts.passed if counts else None))
    return result


def _flow_counts(events: UpdateEvents, flow: str, config: TableConfig) -> dict[str, int | None]:
    """One append flow's rows written and quarantined, as its events reported them (None: not reported)."""
    written, failing = events.flows.get(flow), events.flows.get(flow + QUARANTINE_FLOW_SUFFIX)
    quarantined = (failing.rows if failing else None) if config.on_error is OnError.QUARANTINE \
        and config.has_expectations else 0
    return {"rows_written": written.rows if written else None, "rows_quarantined": quarantined}


def _timestamp(epoch_ms: int) -> str:
    """The event filter's format: 2026-11-23T10:00:00.000Z."""
    at = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
