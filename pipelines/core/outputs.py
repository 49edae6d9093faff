"""What a table is and what writes it: output kinds and flow kinds as typed classes, as Spark's own
`pyspark/pipelines/output.py` and `flow.py` model them. Pure Python: the plan states each table's kind
and flows; every consumer (LDP registrar, Spark runner's materializer, storage) looks the kind up in
its own `OutputHandlers` table, so a new kind is one class here plus one entry per consumer, and a
consumer that lacks one fails with a message naming both, never with a silent wrong write.

    Output kinds   MaterializedView | StreamingTable | CdcTarget | SnapshotCdcTarget   (room for Sink)
    Flow kinds     QueryFlow | AppendFlow(once) | AutoCdcFlow | AutoCdcFromSnapshotFlow
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, Mapping, TypeVar

from .errors import EngineError, Problem

__all__ = ["Output", "MaterializedView", "StreamingTable", "CdcTarget", "SnapshotCdcTarget", "Flow", "QueryFlow",
           "AppendFlow", "AutoCdcFlow", "AutoCdcFromSnapshotFlow", "OutputHandlers", "UnsupportedOutput"]

Handler = TypeVar("Handler")


@dataclass(frozen=True)
class Output:
    """Base of every output kind. `kind` names it in the plan's JSON, `label` in its text;
    `reads_stream` says whether the flows into it read their inputs as streams; `appends` whether a
    run only adds rows to it (so the rows a run added are its news, for the sinks that take those)."""

    kind: ClassVar[str] = "output"
    label: ClassVar[str] = "output"
    reads_stream: ClassVar[bool] = False
    appends: ClassVar[bool] = False


@dataclass(frozen=True)
class MaterializedView(Output):
    """A table whose contents are the result of its query, recomputed and replaced on each run."""

    kind: ClassVar[str] = "materialized_view"
    label: ClassVar[str] = "table"


@dataclass(frozen=True)
class StreamingTable(Output):
    """A table that streaming flows append to: each run adds what is new in its inputs."""

    kind: ClassVar[str] = "streaming_table"
    label: ClassVar[str] = "streaming table"
    reads_stream: ClassVar[bool] = True
    appends: ClassVar[bool] = True


@dataclass(frozen=True)
class CdcTarget(Output):
    """A table kept by applying a change feed (AUTO CDC): rows upserted and deleted by key in
    `sequence_by` order, as SCD type 1 (current rows) or type 2 (history, `__START_AT`/`__END_AT`).
    On Databricks a streaming table; locally the target is recomputed from every event seen so far."""

    stored_as_scd_type: int = 1
    kind: ClassVar[str] = "cdc_target"
    label: ClassVar[str] = "CDC table"


@dataclass(frozen=True)
class SnapshotCdcTarget(CdcTarget):
    """A CDC table kept from snapshots (AUTO CDC FROM SNAPSHOT): a row new or changed since the previous
    snapshot is an upsert at the snapshot's version, a key gone from it a delete."""

    kind: ClassVar[str] = "snapshot_cdc_target"
    label: ClassVar[str] = "snapshot CDC table"


@dataclass(frozen=True)
class Flow:
    """Base of every flow kind: something that writes rows into the output named `target`."""

    name: str
    target: str
    kind: ClassVar[str] = "flow"


@dataclass(frozen=True)
class QueryFlow(Flow):
    """The table's transformation: one query whose result is the whole of what it writes
    (Spark's `Flow` with the target's own name, as `@dp.table` / `@dp.materialized_view` define)."""

    kind: ClassVar[str] = "query"


@dataclass(frozen=True)
class AppendFlow(Flow):
    """One of several flows appending into one streaming table (`flows:`), Spark's `append_flow`:
    each reads its own input with its own checkpoint, so adding a flow never reprocesses the others.
    `once`: a backfill, read as a batch and appended a single time (until a full refresh)."""

    once: bool = False
    kind: ClassVar[str] = "append"


@dataclass(frozen=True)
class AutoCdcFlow(Flow):
    """The table's change feed (its transformation, or its input as it is) applied to the target by
    key and sequence: Spark's `create_auto_cdc_flow`."""

    kind: ClassVar[str] = "auto_cdc"


@dataclass(frozen=True)
class AutoCdcFromSnapshotFlow(Flow):
    """The table's snapshots diffed into changes by key: LDP's `create_auto_cdc_from_snapshot_flow`."""

    kind: ClassVar[str] = "auto_cdc_from_snapshot"


class UnsupportedOutput(EngineError):
    """A consumer was handed an output kind it has no handler for (a kind added without its entry)."""


class OutputHandlers(Generic[Handler]):
    """One consumer's dispatch table: output kind (class) -> what that consumer does for it.
    A subclass of a registered kind uses its parent's handler unless it registers its own."""

    def __init__(self, consumer: str, handlers: Mapping[type[Output], Handler]):
        self.consumer = consumer
        self._handlers: dict[type[Output], Handler] = dict(handlers)

    def register(self, kind: type[Output], handler: Handler) -> None:
        self._handlers[kind] = handler

    def unregister(self, kind: type[Output]) -> None:
        self._handlers.pop(kind, None)

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, type) and any(k in self._handlers for k in kind.__mro__)

    def __getitem__(self, output: Output) -> Handler:
        for kind in type(output).__mro__:
            if kind in self._handlers:
                return self._handlers[kind]
        known = ", ".join(sorted(k.kind for k in self._handlers))
        raise UnsupportedOutput(Problem(
            f"the {self.consumer} has no handler for output kind '{output.kind}' "
            f"({type(output).__name__}); it handles: {known}", key="output", value=output.kind,
            hint=f"add the kind's entry to the {self.consumer}'s table with .register(kind, handler)"))
