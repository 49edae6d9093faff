"""The run report on the after-table seam: a sample of each table's quarantined rows as it is written,
then, when the run ends, `{state}/reports/{run_id}.json` (what the report shows: the run's summary,
the plan's graph, the samples, each table's recent runs) and `{state}/reports/{run_id}.html`, its page
(`pipelines.report.html`). `ldp_engine report` renders the page again from the JSON. A report that
cannot be written changes nothing but the summary's `"report"` (`"failed: ..."`).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

from pipelines.catalog.storage import TableStore
from pipelines.core.errors import describe_error
from pipelines.core.files import write_atomically
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import RunResult, TableResult, history_entry
from pipelines.core.seam import Read
from pipelines.core.vocabulary import ERRORS, QUARANTINE_SUFFIX, WARNINGS, OnError
from pipelines.report.html import render

SAMPLE_ROWS = 20
History = Callable[[list[str], float], dict[str, list[dict[str, Any]]]]  # (tables, run start) -> runs


class RunReport:
    name = "run_report"

    def __init__(self, folder: Path, plan: Plan, state: Path, history: History,
                 planned: list[dict[str, Any]] | str | None = None):
        self.folder = folder
        self.plan = plan
        self.state = state
        self.history = history
        self.planned = planned  # what the run was to change (`plan`, read before it started), or why not
        self.samples: dict[str, dict[str, Any]] = {}
        self.path: Path | None = None  # set once the page is written
        self._lock = threading.Lock()

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        if not result.rows_quarantined or table.config.on_error is not OnError.QUARANTINE:
            return
        store = TableStore(read().sparkSession, self.plan.pipeline, self.state)
        sample = quarantine_sample(store.read(table.name + QUARANTINE_SUFFIX))
        with self._lock:
            self.samples[table.name] = sample

    def on_run_finished(self, run: RunResult) -> None:
        try:
            data = {"run_id": run.run_id, "pipeline": self.plan.pipeline.name, "mode": self.plan.mode,
                    "started_at": run.started_at, "finished_at": run.finished_at,
                    "graph": {t.name: {"layer": t.config.layer, "depends_on": list(t.config.depends_on)}
                              for t in self.plan.tables},
                    "samples": self.samples, "history": self._history(run), "run": run.to_dict(),
                    "planned": self.planned}
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(self.folder / f"{run.run_id}.json", json.dumps(data, default=str))
            page = self.folder / f"{run.run_id}.html"
            write_atomically(page, render(data))
            self.path = page
            run.details["report"] = str(page)
        except Exception as exc:  # noqa: BLE001 - the report never changes the run's outcome
            run.details["report"] = f"failed: {describe_error(exc)}"

    def _history(self, run: RunResult) -> dict[str, list[dict[str, Any]]]:
        """Each table's recent runs, ending with this one (the run records do not hold it yet)."""
        history = self.history(list(self.plan.order), run.started_at)
        for table in run.tables:
            runs = history.setdefault(table.name, [])
            if not runs or runs[-1]["run_id"] != run.run_id:
                runs.append(history_entry(run.run_id, run.started_at, table.to_dict()))
        return history


def quarantine_sample(df: Any) -> dict[str, Any]:
    """Up to SAMPLE_ROWS quarantined rows, their `_errors` shortened to `check: message`."""
    columns = [c for c in df.columns if c != WARNINGS]
    rows = []
    for row in df.select(*columns).limit(SAMPLE_ROWS).collect():
        values = row.asDict(recursive=True)
        values[ERRORS] = [f"{e.get('name')}: {e.get('message')}" for e in values.get(ERRORS) or []]
        rows.append([values[c] for c in columns])
    return {"columns": columns, "rows": rows}
