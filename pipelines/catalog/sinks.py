"""Sink writers: the Spark side of each sink type (`pipelines.core.sinks`, keyed by `type:`).

A writer copies a finished table to its target in one transaction: it either returns the rows it
wrote, or raises and leaves the target as it was. A new sink type is its spec plus a `SinkWriter`
subclass registered under the same type with `register_writer("name", NameWriter)`."""
from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

from pyspark.sql import DataFrame

from pipelines.core.errors import Problem, RunError
from pipelines.core.files import write_atomically
from pipelines.core.sinks import SINKS, SinkSpec


@dataclass(frozen=True)
class SinkRun:
    """What every writer of one run shares: the run's id (a retried run replaces the rows it wrote
    instead of doubling them), the run's one Lakebase connection (the pipeline's `lakebase:` block,
    also used by the run inventory and published checks), connected only if used, the folder
    relative sink paths start from (config.yml's), the `type: python` sinks' functions (by
    `module.function`, loaded with the project) and the state folder (where they count their batches)."""

    run_id: str
    lakebase: Any = None
    base_dir: Path | None = None
    functions: Mapping[str, Callable[..., object]] = field(default_factory=dict)
    state: Path | None = None


class SinkState:
    """A JSON file of numbers per `table/sink` in the state folder (`{state}/sinks/NAME.json`), shared by
    the threads of a run, rewritten atomically (a crash leaves the old numbers). Without a state folder
    nothing is kept: every read finds nothing."""

    _lock = threading.Lock()  # tables finish on several threads; each file is read, updated, rewritten

    def __init__(self, state: Path | None, name: str):
        self.file = None if state is None else state / "sinks" / f"{name}.json"

    def get(self, slot: str) -> int | None:
        return self._load().get(slot)

    def set(self, slot: str, value: int) -> None:
        if self.file is None:
            return
        with self._lock:
            values = self._load()
            values[slot] = value
            self.file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.file, json.dumps(values, indent=1, sort_keys=True))

    def _load(self) -> dict[str, int]:
        if self.file is None or not self.file.is_file():
            return {}
        return json.loads(self.file.read_text(encoding="utf-8"))


Spec = TypeVar("Spec", bound=SinkSpec)


@dataclass(frozen=True)
class LakeflowSink:
    """How a Databricks pipeline delivers a sink of a streaming table itself, from an append flow over
    the table's new rows (business columns only): `dp.create_sink(name, format, options)` fed with
    `rows(new_rows)`, or, with `handler`, a `foreach_batch_sink` calling it with each micro-batch."""

    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    rows: Callable[[DataFrame], DataFrame] = lambda df: df
    handler: Callable[[DataFrame, int], None] | None = None


class SinkWriter(ABC, Generic[Spec]):
    """Writes one sink type's targets during one run (made on the run's first write of that type)."""

    def __init__(self, run: SinkRun):
        self.run = run

    @abstractmethod
    def write(self, df: DataFrame, sink: Spec, table: str) -> int | None:
        """Copy `df` (table `table`, business columns only) to the sink's target in one transaction;
        the rows written (None: unknown). A failure leaves the target as it was."""

    def lakeflow(self, sink: Spec, table: str) -> LakeflowSink:
        """The sink as a Databricks pipeline declares it (for specs whose `lakeflow_sink` is set)."""
        raise NotImplementedError(f"{type(self).__name__} has no Lakeflow sink")

    def close(self) -> None:
        """Release what the run's writes held (called once, when the run finishes)."""


_WRITERS: dict[str, type[SinkWriter[Any]]] = {}


def register_writer(sink_type: str, writer: type[SinkWriter[Any]]) -> None:
    """Register the writer of a sink type, under the `type:` its spec is registered by."""
    if SINKS.get(sink_type) is None:
        raise ValueError(f"no sink spec is registered as {sink_type!r} (registered: "
                         f"{', '.join(SINKS.types())}); register the spec first")
    _WRITERS[sink_type] = writer


def writer_class(sink_type: str) -> type[SinkWriter[Any]]:
    """The writer registered for a sink type (a run-time error names the ones there are)."""
    writer = _WRITERS.get(sink_type)
    if writer is None:
        raise RunError(Problem(f"no writer is registered for sink type {sink_type!r}",
                               hint=f"writers exist for: {', '.join(_WRITERS) or 'none'}"))
    return writer
