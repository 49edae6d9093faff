"""The Spark runner: executes a Plan on a session, tables in parallel as soon as their inputs are ready.

Per table: read inputs → call the transformation → write (batch overwrite or streaming append).
A failed table skips its downstream tables; independent branches still finish, unless fail_fast.
A table running longer than `table_timeout` seconds fails and is abandoned: its Spark jobs are
interrupted on Spark Connect (on a classic session they run to their end), and nothing it still
computes reaches the catalog.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

import networkx as nx
from pyspark.sql import DataFrame, SparkSession

from pipelines.quality.enforce import Expectations, strip_quality_columns

from pipelines.core.errors import EngineError, Problem, RunError
from pipelines.core.loader import Transformation, call_transformation
from pipelines.core.plan import Plan, TablePlan
from pipelines.catalog.sources import read_source
from pipelines.catalog.storage import TableStore, WriteStats

log = logging.getLogger(__name__)

Status = Literal["success", "failed", "skipped"]
EventHandler = Callable[[str, "TableResult"], None]


@dataclass
class TableResult:
    name: str
    layer: str
    status: Status | Literal["pending", "running"] = "pending"
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_dropped: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    tables: list[TableResult] = field(default_factory=list)

    @property
    def status(self) -> Literal["success", "failed"]:
        return "success" if all(t.status == "success" for t in self.tables) else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "tables": [t.to_dict() for t in self.tables]}


class SparkRunner:
    """Runs one Plan; `on_event(kind, result)` is called with kind in started/finished/failed/skipped."""

    def __init__(self, spark: SparkSession, plan: Plan, functions: dict[str, Transformation],
                 store: TableStore, max_parallel: int = 4, fail_fast: bool = False,
                 on_event: EventHandler | None = None, table_timeout: float | None = None):
        self.spark = spark
        self.plan = plan
        self.functions = functions
        self.store = store
        self.max_parallel = max(1, max_parallel)
        self.fail_fast = fail_fast
        self.on_event = on_event or (lambda kind, result: None)
        self.expectations = Expectations(spark, plan.config)
        self.table_timeout = table_timeout
        self.abandoned: set[str] = set()  # timed-out tables: their threads must not write or report
        self._run_tag = f"ldp-{uuid.uuid4().hex[:12]}"
        self._connect = type(spark).__module__.startswith("pyspark.sql.connect")

    def run(self) -> RunResult:
        self.store.ensure_schema()
        self._check_existing_inputs()
        results = {t.name: TableResult(t.name, t.layer) for t in self.plan.tables}
        graph = nx.DiGraph()
        graph.add_nodes_from(results)
        graph.add_edges_from((dep, t.name) for t in self.plan.tables for dep in t.upstream_in_plan)
        waiting = {name: graph.in_degree(name) for name in results}
        stop = False
        pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="ldp")
        running: dict[Future[None], str] = {}
        deadlines: dict[Future[None], float] = {}

        def submit_ready() -> None:
            for name in self.plan.order:  # plan order keeps submission deterministic
                if waiting[name] == 0 and results[name].status == "pending" and not stop:
                    results[name].status = "running"
                    future = pool.submit(self._run_table, self.plan.table(name), results[name])
                    running[future] = name
                    if self.table_timeout:
                        deadlines[future] = time.monotonic() + self.table_timeout

        def finished(name: str) -> None:
            nonlocal stop
            if results[name].status == "success":
                for child in graph.successors(name):
                    waiting[child] -= 1
            else:
                self._skip(nx.descendants(graph, name), results, f"upstream table '{name}' failed")
                stop = stop or self.fail_fast

        try:
            submit_ready()
            while running:
                timeout = max(0.0, min(deadlines.values()) - time.monotonic()) if deadlines else None
                done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    deadlines.pop(future, None)
                    finished(running.pop(future))
                for future in [f for f, at in deadlines.items() if at <= time.monotonic() and not f.done()]:
                    name = running.pop(future)
                    deadlines.pop(future)
                    self._abandon(name, results[name])
                    finished(name)
                submit_ready()
        finally:
            pool.shutdown(wait=not self.abandoned, cancel_futures=True)
        if stop:
            pending = [n for n, r in results.items() if r.status == "pending"]
            self._skip(pending, results, "not started: --fail-fast stopped the run")
        return RunResult([results[name] for name in self.plan.order])

    def _skip(self, names: Any, results: dict[str, TableResult], reason: str) -> None:
        for name in sorted(names):
            if results[name].status == "pending":
                results[name].status = "skipped"
                results[name].error = reason
                self.on_event("skipped", results[name])

    def _check_existing_inputs(self) -> None:
        missing = [name for name in self.plan.existing_inputs if not self.store.exists(name)]
        if missing:
            readers = {n: [t.name for t in self.plan.tables if n in t.upstream_existing] for n in missing}
            raise RunError([Problem(
                f"upstream table '{name}' is outside the selection and does not exist yet "
                f"({self.store.fqn(name)}), but {', '.join(readers[name])} read(s) it",
                table=readers[name][0], key="depends_on", value=name,
                hint=f"run it first or widen the selection, e.g. --select +{readers[name][0]}")
                for name in missing])

    def _abandon(self, name: str, result: TableResult) -> None:
        """A table past its timeout: failed now; its Spark jobs cancelled; its thread may not write."""
        self.abandoned.add(name)
        if self._connect:  # classic Spark 4.2 cancels nothing here, or leaves a UDF task hanging
            self.spark.interruptTag(self._table_tag(name))
        result.status = "failed"
        result.seconds = float(self.table_timeout or 0)
        result.error = (f"timed out after {self.table_timeout:g} s (--table-timeout); nothing it computes "
                        "from now on is written")
        self.on_event("failed", result)

    def _table_tag(self, name: str) -> str:
        return f"{self._run_tag}-{name}"

    def _run_table(self, table: TablePlan, result: TableResult) -> None:
        started = time.perf_counter()
        self.on_event("started", result)
        tag = self._table_tag(table.name)
        if self._connect:
            self.spark.addTag(tag)
        stats: WriteStats | None = None
        error: str | None = None
        try:
            stats = self._materialize(table)
        except EngineError as exc:  # the engine's own, already readable
            error = exc.render()
        except Exception as exc:  # noqa: BLE001 - a table's failure is reported, not raised
            log.debug("table %s failed", table.name, exc_info=True)
            error = _describe_error(exc)
        finally:
            if self._connect:
                self.spark.removeTag(tag)
        if table.name in self.abandoned:  # already reported as timed out
            return
        if stats is not None:
            result.rows_written = stats.rows_written
            result.rows_quarantined = stats.quality.rows_quarantined
            result.rows_dropped = stats.quality.rows_dropped
            result.checks = stats.quality.checks
        result.status, result.error = ("success", None) if error is None else ("failed", error)
        result.seconds = round(time.perf_counter() - started, 3)
        self.on_event("finished" if result.status == "success" else "failed", result)

    def _materialize(self, table: TablePlan) -> WriteStats:
        df = self._compute(table)
        self._still_wanted(table.name)
        checked = self.expectations.apply(table.config, df)
        if df.isStreaming:
            return self.store.append_stream(table.config, df, checked)
        return self.store.overwrite(table.config, df, checked,
                                    accept=lambda: self._still_wanted(table.name))

    def _still_wanted(self, name: str) -> None:
        """Raise once the run gave up on the table (timed out): nothing of it may be written."""
        if name in self.abandoned:
            raise TimeoutError(f"table {name} was abandoned after --table-timeout")

    def _compute(self, table: TablePlan) -> DataFrame:
        inputs: dict[str, object] = {dep: strip_quality_columns(self.store.read(dep))
                                     for dep in table.config.depends_on}
        if table.config.source is not None:
            inputs["source"] = self._read_source(table)
        df = call_transformation(self.functions[table.name], inputs, self.spark)
        if not isinstance(df, DataFrame):
            raise TypeError(f"the transformation returned {type(df).__name__}, expected a DataFrame")
        return df

    def _read_source(self, table: TablePlan) -> DataFrame:
        assert table.config.source is not None
        return read_source(self.spark, table.config.source, self.plan.config.base_dir, table.streaming)


def _describe_error(exc: BaseException) -> str:
    """One readable line: Spark's error class and message, without the JVM stack trace."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if "JVM stacktrace" in text:
        text = text.split("JVM stacktrace")[0].strip()
    message = first if len(text) > 500 else text
    return f"{type(exc).__name__}: {message}"
