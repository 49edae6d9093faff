"""`ldp_engine --runner pipeline --pipeline-id ID`: start a Lakeflow pipeline update for the selection.

A job's python_wheel_task is not a pipeline update: table definitions only take effect inside the
pipeline whose `libraries` hold the entry source (pipelines/ldp_pipeline.py). So the wheel entry
point validates and plans locally, asks the pipeline to refresh exactly the selected tables (the
pipeline defines all of them), follows the update to its end and exits with the CLI's codes.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

from pipelines.core.errors import Problem, UsageError
from pipelines.core.plan import Plan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.vocabulary import TableStatus

from .flow_events import FLOW_STATUS, dataset_name, state_in
from .registrar import pipeline_datasets

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
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        seen: set[str] = set()
        while True:
            state = self.client.pipelines.get_update(self.pipeline_id, update_id).update.state
            self._new_events(update_id, seen)
            name = state.value if state is not None else "UNKNOWN"
            if name in _UPDATE_TERMINAL:
                return name
            self.sleep(self.poll_seconds)

    def _new_events(self, update_id: str, seen: set[str]) -> None:
        newer = {"filter": f"timestamp >= '{self._since}'"} if self._since else {}
        events = self.client.pipelines.list_pipeline_events(self.pipeline_id, order_by=["timestamp asc"],
                                                            **newer)
        for event in events:
            if event.id in seen or event.origin is None or event.origin.update_id != update_id:
                continue
            seen.add(event.id)
            self._since = event.timestamp or self._since
            if event.event_type == "flow_progress" and event.origin.flow_name:
                self._flow_progress(event)
            elif event.level is not None and event.level.value == "ERROR":
                self.echo(f"error: {event.message}")

    def _flow_progress(self, event: Any) -> None:
        flow = self.flows.setdefault(dataset_name(event.origin.flow_name), {"started": event.timestamp})
        state = state_in(event.message or "")
        if state in FLOW_STATUS:
            flow["status"] = FLOW_STATUS[state]
            flow["ended"] = event.timestamp
            if flow["status"] == "failed":
                flow["error"] = _error_text(event)
        self.echo(f"{event.timestamp} {event.message}")

    def summary(self, plan: Plan, update_id: str, state: str) -> RunResult:
        """The run result of a finished update: row counts are not in its events (left null/out)."""
        run = RunResult("pipeline", details={"pipeline_id": self.pipeline_id, "update_id": update_id,
                                             "state": state})
        for table in plan.tables:
            flow = self.flows.get(table.name, {})
            status = flow.get("status") or ("success" if state == "COMPLETED" else "skipped")
            run.tables.append(TableResult(table.name, table.layer, TableStatus(status), rows_written=None,
                                          rows_quarantined=None, rows_dropped=None, checks=None,
                                          seconds=_seconds(flow), error=flow.get("error")))
        if state != "COMPLETED" and all(t.succeeded for t in run.tables):
            run.errors.append(f"the update ended {state}")
        run.finished_at = time.time()
        return run

    def reader(self, plan: Plan) -> Callable[[str], Any]:
        """`read(name)` for after-table consumers: the stored table, through the job's own session
        (a wheel task on Databricks has one), opened on the first read only."""
        def read(name: str) -> Any:
            from pyspark.sql import SparkSession

            spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            parts = [p for p in (plan.pipeline.catalog, plan.pipeline.schema_name, name) if p]
            return spark.table(".".join(f"`{part}`" for part in parts))

        return read


def _error_text(event: Any) -> str:
    if event.error is not None and event.error.exceptions:
        return str(event.error.exceptions[0].message or event.message)
    return str(event.message)


def _seconds(flow: dict[str, Any]) -> float:
    try:
        started = datetime.fromisoformat(str(flow["started"]).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(str(flow["ended"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return round((ended - started).total_seconds(), 3)
