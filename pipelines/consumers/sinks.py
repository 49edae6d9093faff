"""Sinks on the after-table seam: each written table's `sinks:` are written from the stored table
(without DQX's result columns), each by the writer registered for its `type:`, in its own transaction.
A streaming table's sinks but a `replace` get only the rows the sink has not had yet: those added
after the table version it last took in full, kept per table and sink in
`{state}/sinks/delivered.json` and advanced only by a successful write (a failed one is retried
from the same version by the next run). A failing sink leaves its target as it was, is reported on
its table (`"sinks"` in the summary: type, target, mode, rows, status, error) and fails the run
(exit 3); the table itself and every other sink are unaffected.
"""
from __future__ import annotations

import threading
from typing import Any

from pyspark.sql import DataFrame

import pipelines.catalog.delta_sink  # noqa: F401 - registers the built-in `delta` writer
import pipelines.catalog.kafka_sink  # noqa: F401 - registers the built-in `kafka` writer
import pipelines.catalog.python_sink  # noqa: F401 - registers the built-in `python` writer
import pipelines.lakebase.sink  # noqa: F401 - registers the built-in `lakebase` writer
from pipelines.catalog.sinks import SinkRun, SinkState, SinkWriter, writer_class
from pipelines.catalog.sources import without_columns
from pipelines.core.errors import describe_error
from pipelines.core.plan import TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Read
from pipelines.core.sinks import SinkSpec, delivered_in_pipeline
from pipelines.core.vocabulary import RESULT_COLUMNS


class TableSinks:
    name = "sinks"

    def __init__(self, run: SinkRun, skip_pipeline_delivered: bool = False):
        self.run = run
        self.skip_pipeline_delivered = skip_pipeline_delivered  # after a Databricks pipeline that delivered them
        self._writers: dict[str, SinkWriter[Any]] = {}  # one per sink type, made on its first write
        self._lock = threading.Lock()

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        delivered = delivered_in_pipeline(table.config.sinks, table.output.appends) \
            if self.skip_pipeline_delivered else []
        sinks = [sink for sink in table.config.sinks if sink not in delivered]
        if not sinks:
            return
        outcomes = [self._deliver(sink, table, read) for sink in sinks]
        result.sinks = outcomes
        failed = [f"{o['target']}: {o['error']}" for o in outcomes if o["status"] == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} sink(s) failed, target(s) unchanged: {'; '.join(failed)}")

    def _deliver(self, sink: SinkSpec, table: TablePlan, read: Read) -> dict[str, Any]:
        if not (sink.takes_new_rows and table.output.appends):
            return self._write(sink, without_columns(read(), RESULT_COLUMNS), table.name)
        delivered, slot = SinkState(self.run.state, "delivered"), f"{table.name}/{sink.target(table.name)}"
        df, version = read(after=delivered.get(slot))
        outcome = self._write(sink, without_columns(df, RESULT_COLUMNS), table.name)
        if outcome["status"] == "success" and version is not None:
            delivered.set(slot, version)
        return outcome

    def _write(self, sink: SinkSpec, df: DataFrame, table: str) -> dict[str, Any]:
        outcome: dict[str, Any] = {"type": sink.type, "target": sink.target(table), "mode": sink.write_mode,
                                   "rows": None, "status": "success", "error": None}
        try:
            outcome["rows"] = self._writer(sink.type).write(df, sink, table)
        except Exception as exc:  # noqa: BLE001 - reported per sink; the target rolled back
            outcome.update(status="failed", error=describe_error(exc))
        return outcome

    def _writer(self, sink_type: str) -> SinkWriter[Any]:
        with self._lock:  # tables finish on several threads
            if sink_type not in self._writers:
                self._writers[sink_type] = writer_class(sink_type)(self.run)
            return self._writers[sink_type]

    def on_run_finished(self, run: RunResult) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()
