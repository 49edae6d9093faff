"""The `type: python` sink's writer: the project's `write(batch_df, batch_id)` called with the table.

`batch_id` is the sink's count of successful calls, kept per table and sink in the state folder
(`{state}/sinks/batches.json`): it advances only when the function returns, so the call a rerun retries
gets the id of the one that failed, as a retried micro-batch does in `foreachBatch`."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from pyspark.sql import DataFrame

from pipelines.catalog.sinks import SinkWriter, register_writer
from pipelines.core.errors import Problem, RunError
from pipelines.core.files import write_atomically
from pipelines.core.python_sink import PythonSink

_lock = threading.Lock()  # tables finish on several threads; the counts share one file


class PythonWriter(SinkWriter[PythonSink]):
    def write(self, df: DataFrame, sink: PythonSink, table: str) -> int | None:
        function = self.run.functions.get(sink.entry)
        if function is None:
            raise RunError(Problem(f"the sink function {sink.entry} was not loaded with the project", table=table))
        slot = f"{table}/{sink.entry}"
        batch_id = self._batches().get(slot, 0)
        function(df, batch_id)
        with _lock:
            batches = self._batches()
            batches[slot] = batch_id + 1
            self._save(batches)
        return df.count()

    @property
    def _file(self) -> Path | None:
        return None if self.run.state is None else self.run.state / "sinks" / "batches.json"

    def _batches(self) -> dict[str, int]:
        file = self._file
        return json.loads(file.read_text(encoding="utf-8")) if file is not None and file.is_file() else {}

    def _save(self, batches: dict[str, int]) -> None:
        file = self._file
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(file, json.dumps(batches, indent=1, sort_keys=True))  # a crash leaves the old counts


register_writer("python", PythonWriter)
