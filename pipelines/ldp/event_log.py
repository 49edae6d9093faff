"""A Lakeflow pipeline update's event log, read into per-dataset metrics: status, rows written, each
expectation's passed/failed records, duration and the error of a failed flow.

The SDK's typed `PipelineEvent` has no `details` (it drops the field), and `details.flow_progress` is
where Lakeflow records the numbers (docs "Pipeline event log schema"):

    {"flow_progress": {"status": "COMPLETED", "metrics": {"num_output_rows": 5},
                       "data_quality": {"dropped_records": 0, "expectations": [
                           {"name": "...", "dataset": "...", "passed_records": 4, "failed_records": 1}]}}}

so the pages are read as JSON through the client's `api_client`, as the SDK's own pager does, except
that a follow-up page sends only its token (the API accepts nothing else beside `page_token`).

A flow may report several times per attempt (each streaming micro-batch): its numbers are summed. A
flow that failed and then started again is a retry: only the last attempt's numbers count, as only
its writes stayed. A number the events never gave is None, never 0.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

from .flow_events import FLOW_STATUS, dataset_name, state_in

PAGE_SIZE = 250
_FINISHED = frozenset(FLOW_STATUS)


@dataclass
class Expectation:
    passed: int | None = None
    failed: int | None = None

    def add(self, passed: Any, failed: Any) -> None:
        self.passed = _plus(self.passed, passed)
        self.failed = _plus(self.failed, failed)


@dataclass
class FlowMetrics:
    """One dataset's flow in one update (its last attempt)."""

    started: str | None = None
    ended: str | None = None
    state: str | None = None  # the latest flow_progress status: QUEUED, RUNNING, COMPLETED, FAILED...
    rows: int | None = None  # metrics.num_output_rows, summed over the attempt's reports
    dropped: int | None = None  # data_quality.dropped_records
    expectations: dict[str, Expectation] = field(default_factory=dict)  # by (dataset, name) below
    error: str | None = None
    attempts: int = 1

    @property
    def status(self) -> str | None:
        """The run summaries' word for the final state (success / failed / skipped), None if unfinished."""
        return FLOW_STATUS.get(self.state or "")

    @property
    def seconds(self) -> float | None:
        try:
            started = datetime.fromisoformat(str(self.started).replace("Z", "+00:00"))
            ended = datetime.fromisoformat(str(self.ended).replace("Z", "+00:00"))
        except ValueError:
            return None
        return round((ended - started).total_seconds(), 3)

    def retried_by(self, state: str | None) -> bool:
        """A failed flow that reports work again (an event in `state`) has been retried."""
        return self.state == "FAILED" and state is not None and state not in _FINISHED

    def record(self, event: dict[str, Any], progress: dict[str, Any], state: str | None) -> None:
        """Add a flow_progress event, given its parsed `details.flow_progress` and its state."""
        at = event.get("timestamp")
        self.started = self.started or at
        self.state = state or self.state
        metrics, quality = progress.get("metrics") or {}, progress.get("data_quality") or {}
        if "num_output_rows" in metrics:
            self.rows = _plus(self.rows, metrics["num_output_rows"])
        if "dropped_records" in quality:
            self.dropped = _plus(self.dropped, quality["dropped_records"])
        for item in quality.get("expectations") or []:
            key = f"{dataset_name(str(item.get('dataset') or ''))}.{item.get('name')}"
            self.expectations.setdefault(key, Expectation()).add(item.get("passed_records"),
                                                                 item.get("failed_records"))
        if state in _FINISHED:
            self.ended = at
            self.error = _error(event) if state == "FAILED" else None


def _failed_or_unfinished(states: list[str | None]) -> str | None:
    failed = [state for state in states if FLOW_STATUS.get(state or "") == "failed"]
    return failed[0] if failed else next((state for state in states if state not in _FINISHED), None)


def _state(event: dict[str, Any], progress: dict[str, Any]) -> str | None:
    return progress.get("status") or state_in(event.get("message") or "")


def _plus(total: int | None, value: Any) -> int | None:
    if value is None:
        return total
    return (total or 0) + int(value)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    if isinstance(details, str):  # the event log table keeps it as a JSON string
        try:
            details = json.loads(details)
        except ValueError:
            return {}
    return details if isinstance(details, dict) else {}


def _error(event: dict[str, Any]) -> str:
    """The first exception's class and message's first line; else the event's message."""
    exceptions = (event.get("error") or {}).get("exceptions") or []
    if exceptions:
        first = exceptions[0]
        message = str(first.get("message") or "").strip().splitlines()
        name = first.get("class_name")
        text = message[0] if message else ""
        return f"{name}: {text}" if name else text or str(event.get("message"))
    return str(event.get("message") or "failed")


@dataclass
class UpdateEvents:
    """What one update's events said so far, per flow (a table's own flow is named after it; a table
    with `flows:` has one per flow); fed page by page while the update runs."""

    update_id: str
    flows: dict[str, FlowMetrics] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)  # flow -> the dataset it writes
    seen: set[str] = field(default_factory=set)

    def add(self, event: dict[str, Any]) -> bool:
        """Record an event of this update (once); True if it was new and about this update."""
        origin = event.get("origin") or {}
        if event.get("id") in self.seen or origin.get("update_id") != self.update_id:
            return False
        self.seen.add(str(event.get("id")))
        if event.get("event_type") == "flow_progress" and (origin.get("flow_name") or origin.get("dataset_name")):
            name = dataset_name(str(origin.get("flow_name") or origin["dataset_name"]))
            self.targets[name] = dataset_name(str(origin.get("dataset_name") or name))
            progress = _details(event).get("flow_progress") or {}  # parsed once per event
            state = _state(event, progress)
            flow = self.flows.get(name)
            if flow is None or flow.retried_by(state):  # only the last attempt's writes stayed
                flow = self.flows[name] = FlowMetrics(attempts=flow.attempts + 1 if flow else 1)
            flow.record(event, progress, state)
        return True

    def dataset(self, name: str) -> FlowMetrics | None:
        """A dataset's flows as one (None if none reported): rows summed, from the first start to the
        last end, failed if one failed, else still running if one is, else the last one's state."""
        flows = [flow for key, flow in self.flows.items() if self.targets.get(key, key) == name]
        if len(flows) < 2:
            return flows[0] if flows else None
        states = [flow.state for flow in flows]
        started, ended = [f.started for f in flows if f.started], [f.ended for f in flows]
        merged = FlowMetrics(started=min(started) if started else None,
                             ended=max(str(at) for at in ended) if all(ended) else None,
                             state=_failed_or_unfinished(states) or states[-1],
                             error=next((flow.error for flow in flows if flow.error), None),
                             attempts=max(flow.attempts for flow in flows))
        for flow in flows:
            merged.rows, merged.dropped = _plus(merged.rows, flow.rows), _plus(merged.dropped, flow.dropped)
            for key, counts in flow.expectations.items():
                merged.expectations.setdefault(key, Expectation()).add(counts.passed, counts.failed)
        return merged

    def expectation(self, datasets: list[str], name: str) -> Expectation | None:
        """An expectation's counts summed over the given datasets' flows (None if none reported it)."""
        found = [e for flow in self.flows.values() for key, e in flow.expectations.items()
                 if key.rsplit(".", 1)[-1] == name and key.rsplit(".", 1)[0] in datasets]
        if not found:
            return None
        total = Expectation()
        for item in found:
            total.add(item.passed, item.failed)
        return total


def event_pages(client: Any, pipeline_id: str, since: str | None) -> Iterator[dict[str, Any]]:
    """Every event at or after `since` (oldest first), page by page."""
    path = f"/api/2.0/pipelines/{pipeline_id}/events"
    query: dict[str, Any] = {"order_by": ["timestamp asc"], "max_results": PAGE_SIZE}
    if since:
        query["filter"] = f"timestamp >= '{since}'"
    while True:
        page = client.api_client.do("GET", path, query=query, headers={"Accept": "application/json"})
        yield from page.get("events") or []
        token = page.get("next_page_token")
        if not token:
            return
        query = {"page_token": token, "max_results": PAGE_SIZE}
