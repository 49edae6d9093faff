"""A JSON record of every run under the state folder: `{state}/runs/{run_id}.json`.

The first consumer of the after-table seam: it notes each table as it is written and, when the run
ends, writes the run's summary (the documented JSON) with its id, start and end, the plan it ran and
the order in which tables were written, and what each table declared (checks, sinks, monitor: what
`plan` compares the next run's config with; for a table written successfully, the digest of what
shapes its columns as `query`, so `plan` need not resolve it again while that is unchanged). Written
to a temporary file and renamed, so a reader never sees half a record; the newest record is also
`latest.json`.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from pipelines.core.changes import declarations, query_digests
from pipelines.core.files import write_atomically
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Read
from pipelines.core.vocabulary import TableStatus


class RunRecord:
    name = "run_record"

    def __init__(self, folder: Path, plan: Plan):
        self.folder = folder
        self.plan = plan
        self.written: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.path: Path | None = None  # set once the record is written

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        with self._lock:
            self.written.append({"name": table.name, "at": time.time(), "rows_written": result.rows_written})

    def on_run_finished(self, run: RunResult) -> None:
        record = {
            "run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at or time.time(),
            "pipeline": self.plan.pipeline.name, "mode": self.plan.mode, "config": str(self.plan.config.path),
            "selection": list(self.plan.order), "written": self.written, "summary": run.to_dict(),
            "declared": self._declared(run),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{run.run_id}.json"
        write_atomically(path, json.dumps(record, indent=1))
        write_atomically(self.folder / "latest.json", json.dumps(record, indent=1))
        self.path = path

    def _declared(self, run: RunResult) -> dict[str, dict[str, Any]]:
        written = {t.name for t in run.tables if t.status is TableStatus.SUCCESS}
        if run.runner == "restore":  # an older version, made by code that may since have changed: no digest
            written = set()
        digests = query_digests(self.plan.config, written, self.plan.mode)
        declared = {t.name: declarations(t.config, self.plan.config.base_dir) for t in self.plan.tables}
        for name, digest in digests.items():
            declared[name]["query"] = digest
        return declared
