"""The `type: python` sink's writer: the project's `write(batch_df, batch_id)` called with the table.

`batch_id` is the sink's count of successful calls, kept per table and sink in the state folder
(`{state}/sinks/batches.json`): it advances only when the function returns, so the call a rerun retries
gets the id of the one that failed, as a retried micro-batch does in `foreachBatch`."""
from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.catalog.sinks import LakeflowSink, SinkState, SinkWriter, register_writer
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

    def lakeflow(self, sink: PythonSink, table: str) -> LakeflowSink:
        """The function is a `foreach_batch_sink` handler as it stands: Spark's batch ids, no state."""
        function = self.run.functions[sink.entry]

        def handler(batch_df: DataFrame, batch_id: int) -> None:
            function(batch_df, batch_id)

        return LakeflowSink(handler=handler)


register_writer("python", PythonWriter)
