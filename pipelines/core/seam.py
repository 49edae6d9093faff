"""The after-table seam: what consumes a finished table and a finished run.

Monitors, sinks, the run inventory and the run report plug in here, never into a runner. Every runner
calls the same two methods: the Spark runner as each table is written (in its worker thread), the SDP
and Databricks-pipeline runners after their update, for each table it wrote (`replay`). `read()`
returns the stored table as a DataFrame, opened only if a consumer asks for it; `read(after=v)` the
rows a streaming table gained after its version v (None: all) and the version they reach, where the
runner follows versions (else the whole table and None).

A consumer's failure is its own: it is recorded on the table (or the run) it failed on, the run then
ends as failed, and the tables stay as written. Two deliberate verdicts go further: `before_write`
may refuse a table before it is written (the Spark runner asks; e.g. a monitor naming a column the
output lacks), and `TableFailed` fails a written table (e.g. a monitor alert with `on_alert: fail`):
the consumers after it do not see the table (no sink publishes it) and the Spark runner skips its
downstream tables; runners that replay after their update have already refreshed those, and only
mark the table failed.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from .errors import describe_error
from .plan import Plan, TablePlan
from .results import RunResult, TableResult, new_run_id
from .vocabulary import TableStatus

log = logging.getLogger(__name__)
Read = Callable[..., Any]  # () -> the table; (after=v) -> (its rows added after version v, its version now)
_WHOLE = object()  # `read()` without `after`: the whole table
TABLES_AT_ONCE = 4  # replay's consumer threads, as many as the Spark runner's default workers
ReadAfter = Callable[[int | None], "tuple[Any, int | None]"]


def table_reader(whole: Callable[[], Any], follow: ReadAfter | None = None) -> Read:
    """A consumer's `read`: `whole()` for `read()`; for `read(after=v)`, `follow(v)` where the table's
    versions can be followed, else the whole table and no version."""
    def read(*, after: int | None | object = _WHOLE) -> Any:
        if after is _WHOLE:
            return whole()
        return follow(after) if follow is not None else (whole(), None)  # type: ignore[arg-type]

    return read


class TableFailed(Exception):
    """Raised by a consumer to fail the (written) table it was handed; the message says why."""


@runtime_checkable
class Consumer(Protocol):
    name: str

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        """A table was written and succeeded; `result` holds its counts."""

    def on_run_finished(self, run: RunResult) -> None:
        """Every table of the run has its final status."""


class Consumers:
    """Fans each event out to every consumer, in order, isolating their failures."""

    def __init__(self, consumers: Iterable[Consumer] = (), run_id: str | None = None):
        self.consumers = list(consumers)
        self.run_id = run_id or new_run_id()  # the run's id, known to consumers before the run ends
        self._lock = threading.Lock()  # Spark runner workers report concurrently

    def before_write(self, table: TablePlan, output: Any) -> None:
        """Let consumers refuse a table's output (a DataFrame, not computed yet) before it is written:
        they raise, and nothing is written."""
        for consumer in self.consumers:
            check = getattr(consumer, "before_write", None)
            if check is not None:
                check(table, output)

    def table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        for consumer in self.consumers:
            try:
                consumer.on_table_written(table, result, read)
            except TableFailed as exc:  # the consumers after it (e.g. sinks) do not publish a failed table
                with self._lock:
                    result.status, result.error = TableStatus.FAILED, f"{consumer.name}: {exc}"
                return
            except Exception as exc:  # noqa: BLE001 - reported on the table, never raised into the runner
                log.debug("consumer %s failed on %s", consumer.name, table.name, exc_info=True)
                with self._lock:
                    result.consumer_errors[consumer.name] = describe_error(exc)

    def run_finished(self, run: RunResult) -> None:
        for consumer in self.consumers:
            try:
                consumer.on_run_finished(run)
            except Exception as exc:  # noqa: BLE001 - reported on the run
                log.debug("consumer %s failed on the run", consumer.name, exc_info=True)
                run.errors.append(f"{consumer.name}: {describe_error(exc)}")


def replay(plan: Plan, run: RunResult, consumers: Consumers, read: Callable[[str], Any],
           read_after: Callable[[str, int | None], Any] | None = None) -> RunResult:
    """For runners that learn the outcome after their update: every succeeded table, then the run.
    `read(name)` opens a stored table; `read_after(name, v)`, where given, a streaming table's rows
    added after version v and its version now. Tables are handed over a few at once, as the Spark
    runner's workers hand them (consumers are thread-safe): most of a consumer's time is waiting on
    Spark, so the waits overlap."""
    run.run_id = consumers.run_id
    results = {t.name: t for t in run.tables}  # a run may cover part of the plan (sinks publish)
    written = [(table, results[table.name]) for table in plan.tables
               if table.name in results and results[table.name].succeeded]

    def hand_over(item: tuple[TablePlan, TableResult]) -> None:
        table, result = item
        follow = read_after is not None and table.output.appends
        consumers.table_written(table, result, table_reader(
            lambda name=table.name: read(name),
            (lambda after, name=table.name: read_after(name, after)) if follow else None))  # type: ignore[misc]

    if written:
        with ThreadPoolExecutor(min(TABLES_AT_ONCE, len(written)), thread_name_prefix="ldp-replay") as pool:
            list(pool.map(hand_over, written))
    consumers.run_finished(run)
    return run
