"""The `type: python` sink as config: a function of the project's, `write(batch_df, batch_id)` (the shape
of Lakeflow's `foreach_batch_sink`), in `{transformations}/sinks/{module}.py`, handed the table after each
run. Pure: the function is found by `pipelines.core.loader.load_sink_functions` (a missing one is a config
error) and called by `pipelines.catalog.python_sink.PythonWriter`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .sinks import SinkSpec, register_sink

SINKS_FOLDER = "sinks"  # in the transformations folder (or package), beside the layers'


@register_sink
class PythonSink(SinkSpec):
    """`function(batch_df, batch_id)` from `sinks/{module}.py` writes the table wherever it likes.
    `batch_df` is the stored table (without DQX's columns); `batch_id` counts the sink's successful calls
    (from 0), so a call retried after a failure gets the id of the one that failed, as a micro-batch's does:
    a function that records the ids it has written can make its writes exactly once."""

    type: Literal["python"]
    module: str = Field(min_length=1)
    function: str = "write"

    @field_validator("module", "function")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"must be a Python identifier (a module or function name), got {value!r}")
        return value

    @property
    def entry(self) -> str:
        """The function's name as the run's loaded sink functions key it: `module.function`."""
        return f"{self.module}.{self.function}"

    def target(self, table_name: str) -> str:
        return f"{SINKS_FOLDER}/{self.module}.py:{self.function}"

    @property
    def write_mode(self) -> str:
        return "foreach_batch"

    @property
    def lakeflow_sink(self) -> str | None:
        return "foreach_batch_sink"  # the function already has its handler's shape

    def cdc_problem(self, stored_as_scd_type: int, removes_rows: bool) -> str | None:
        return None  # the function is handed the table as it stands, whatever changed in it
