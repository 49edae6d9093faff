"""Lakebase sinks on the after-table seam: each written table's `sinks:` are written from the stored
table (without DQX's result columns), each in its own transaction. A failing sink leaves its target
as it was, is reported on its table (`"sinks"` in the summary: target, mode, rows, status, error) and
fails the run (exit 3); the table itself and every other sink are unaffected.
"""
from __future__ import annotations

import threading

from pipelines.catalog.sources import without_columns
from pipelines.core.errors import describe_error
from pipelines.core.plan import TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Read
from pipelines.core.vocabulary import RESULT_COLUMNS
from pipelines.lakebase.connection import Lakebase
from pipelines.lakebase.sink import write


class LakebaseSinks:
    name = "lakebase_sinks"

    def __init__(self, lakebase: Lakebase, run_id: str):
        self.lakebase = lakebase
        self.run_id = run_id
        self._lock = threading.Lock()

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        sinks = table.config.sinks
        if not sinks:
            return
        df = without_columns(read(), RESULT_COLUMNS)
        outcomes = []
        for sink in sinks:
            schema, name = sink.target(table.name)
            outcome = {"target": f"{schema}.{name}", "mode": sink.mode, "rows": None, "status": "success", "error": None}
            try:
                outcome["rows"] = write(self.lakebase.connect, df, schema, name, sink.mode, sink.primary_key,
                                        sink.refresh_views, self.run_id, sink.views)
            except Exception as exc:  # noqa: BLE001 - reported per sink; the target rolled back
                outcome.update(status="failed", error=describe_error(exc))
            outcomes.append(outcome)
        result.sinks = outcomes
        failed = [f"{o['target']}: {o['error']}" for o in outcomes if o["status"] == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} sink(s) failed, target(s) unchanged: {'; '.join(failed)}")

    def on_run_finished(self, run: RunResult) -> None:
        with self._lock:
            self.lakebase.close()  # stops the embedded server this run started (after the inventory wrote)
