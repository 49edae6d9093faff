"""One typed result for every runner: what happened to each table, and to the run.

The Spark runner fills it as tables finish; the SDP and Databricks-pipeline runners build it from
what their update reported. `to_dict` is the documented JSON summary; a count a runner cannot know is
None: `rows_written` is then null, and `rows_quarantined`, `rows_dropped`, `checks` are left out.
`rows_written` is what this run wrote (a streaming table: the rows it appended; a CDC table: the change
events it applied, split in `changes`); `rows_total`, where a runner knows it, is the table's size after
the run.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .vocabulary import Criticality, TableStatus


RUN_ID_ENV = "LDP_RUN_ID"  # set it (e.g. to the job run id) so that a retried run keeps its id


def new_run_id() -> str:
    """`LDP_RUN_ID` if set; else sortable by start time, unique across processes: 20261123T220501Z-3f9c2a1b."""
    return os.environ.get(RUN_ID_ENV) or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


CHANGE_EVENT_KINDS = ("upserts", "deletes", "truncates")  # a CDC table's `changes` also has versions_opened


def failure_rates(table: dict[str, Any]) -> dict[str, float]:
    """Each check's share of failing rows in one write of a table, from its recorded result (the
    `TableResult.to_dict` shape): failed over passed + failed where the runtime counts both (a
    Databricks update), else over the rows the write saw (written + quarantined + dropped). A check
    without a count, or a write that saw no rows, is left out: unknown is not 0%. The dashboard's
    `check_failure_rates` dataset computes the same."""
    seen = sum(table.get(key) or 0 for key in ("rows_written", "rows_quarantined", "rows_dropped"))
    rates = {}
    for check in table.get("checks") or []:
        failed, passed = check.get("failed"), check.get("passed")
        checked = failed + passed if failed is not None and passed is not None else seen
        if failed is not None and checked:
            rates[check["name"]] = failed / checked
    return rates


def history_entry(run_id: str | None, started_at: float | None, table: dict[str, Any]) -> dict[str, Any]:
    """One run of a table as the run report's history keeps it, from its recorded result."""
    return {"run_id": run_id, "started_at": started_at, "status": table["status"],
            "rows_written": table.get("rows_written"), "seconds": table.get("seconds"),
            "failure_rates": failure_rates(table)}


def events_applied(changes: dict[str, int]) -> int:
    """The change events a CDC table's run applied (its `rows_written`), from its `changes`."""
    return sum(changes.get(kind, 0) for kind in CHANGE_EVENT_KINDS)


@dataclass(frozen=True)
class CheckResult:
    """Rows that failed one check in one write (None: not countable, e.g. dropped by the pipeline);
    `passed` where the runtime counts it too (a Databricks update's event log)."""

    name: str
    criticality: Criticality
    failed: int | None
    passed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "criticality": self.criticality.value, "failed": self.failed}
        if self.passed is not None:
            out["passed"] = self.passed
        return out


@dataclass
class TableResult:
    name: str
    layer: str
    status: TableStatus = TableStatus.PENDING
    rows_written: int | None = 0
    rows_quarantined: int | None = 0
    rows_dropped: int | None = 0
    rows_total: int | None = None  # the table's rows after the run (streaming: all runs' rows), when known
    checks: list[CheckResult] | None = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    consumer_errors: dict[str, str] = field(default_factory=dict)  # after-table consumers that failed here
    monitor: dict[str, Any] | None = None  # the monitor's outcome: profile rows and fired alerts
    sinks: list[dict[str, Any]] | None = None  # per sink: target, mode, rows, status, error
    changes: dict[str, int] | None = None  # a CDC table: this run's upserts, deletes (, versions_opened)
    new_columns: list[str] = field(default_factory=list)  # an additive contract's columns beyond the declared
    flows: dict[str, dict[str, int | None]] | None = None  # per flow, its rows this run (None: not reported)
    landed: dict[str, int] = field(default_factory=dict)  # per incremental database read (it or a flow): rows landed

    @property
    def succeeded(self) -> bool:
        return self.status is TableStatus.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "layer": self.layer, "status": self.status.value,
                               "rows_written": self.rows_written}
        if self.rows_quarantined is not None:
            out["rows_quarantined"] = self.rows_quarantined
        if self.rows_dropped is not None:
            out["rows_dropped"] = self.rows_dropped
        if self.rows_total is not None:
            out["rows_total"] = self.rows_total
        if self.checks is not None:
            out["checks"] = [check.to_dict() for check in self.checks]
        out.update(seconds=self.seconds, error=self.error, monitor=self.monitor)
        if self.sinks is not None:
            out["sinks"] = list(self.sinks)
        if self.changes is not None:
            out["changes"] = dict(self.changes)
        if self.flows is not None:
            out["flows"] = {name: dict(counts) for name, counts in self.flows.items()}
        if self.new_columns:
            out["new_columns"] = list(self.new_columns)
        if self.landed:
            out["landed"] = dict(self.landed)
        if self.consumer_errors:
            out["consumers"] = dict(self.consumer_errors)
        return out


@dataclass
class RunResult:
    """A run (or, with `dry_run`, a resolution of the pipeline graph on empty inputs).

    `details` are the runner's own identifiers (a pipeline update's ids and final state); `errors`
    are problems of the run as a whole, including consumers that failed on it."""

    runner: str
    tables: list[TableResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    run_id: str = field(default_factory=new_run_id)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def succeeded(self) -> bool:
        return not self.errors and all(t.succeeded and not t.consumer_errors for t in self.tables)

    @property
    def status(self) -> str:
        if self.dry_run:
            return "valid" if self.succeeded else "invalid"
        return "success" if self.succeeded else "failed"

    def table(self, name: str) -> TableResult:
        return next(t for t in self.tables if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "runner": self.runner, **self.details}
        if not self.dry_run:  # a dry run records nothing, so it has no id to look up
            out["run_id"] = self.run_id
            out["tables"] = [t.to_dict() for t in self.tables]
        if self.errors or self.dry_run:
            out["errors"] = list(self.errors)
        return out
