"""The `type: python` sink's writer: the project's `write(batch_df, batch_id)` called with the table.

`batch_id` is the sink's count of successful calls, kept per table and sink in the state folder
(`{state}/sinks/batches.json`): it advances only when the function returns, so the call a rerun retries
gets the id of the one that failed, as a retried micro-batch does in `foreachBatch`."""
from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.catalog.sinks import SinkState, SinkWriter, register_writer
from pipelines.core.errors import Problem, RunError
from pipelines.core.python_sink import PythonSink


class PythonWriter(SinkWriter[PythonSink]):
    def write(self, df: DataFrame, sink: PythonSink, table: str) -> int | None:
        function = self.run.functions.get(sink.entry)
        if function is None:
            raise RunError(Problem(f"the sink function {sink.entry} was not loaded with the project", table=table))
        batches, slot = SinkState(self.run.state, "batches"), f"{table}/{sink.entry}"
        batch_id = batches.get(slot) or 0
        function(df, batch_id)
        batches.set(slot, batch_id + 1)
        return df.count()


register_writer("python", PythonWriter)
