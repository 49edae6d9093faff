"""The Spark runner: executes a Plan on a session, tables in parallel as soon as their inputs are ready.

Per table: read inputs → call the transformation → materialize it under its data-quality policy
(`pipelines.quality`) → hand it to the after-table consumers. Scheduling (ready queue, failures
skipping downstream tables, --fail-fast, --table-timeout) is `schedule.run_plan`. A table running
longer than `table_timeout` seconds fails and is abandoned: its Spark jobs are interrupted on Spark
Connect (on a classic session they run to their end), and nothing it still computes reaches the catalog.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Callable, Iterator

from pyspark.sql import DataFrame, SparkSession

from pipelines.catalog.landing import land
from pipelines.catalog.pyspark_compat import jvm_trace, track_call_sites
from pipelines.catalog.sources import transformation_inputs
from pipelines.catalog.storage import TableStore, commits_tagged
from pipelines.core.errors import Problem, RunError, code_file, describe_error
from pipelines.core.loader import Transformation, call_transformation
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Consumers, table_reader
from pipelines.core.vocabulary import TableStatus
from pipelines.quality.contract import check_schema, guarded
from pipelines.quality.enforce import Expectations
from pipelines.quality.materialize import Materializer, WriteStats

from .schedule import run_plan

log = logging.getLogger(__name__)
EventHandler = Callable[[str, TableResult], None]


class SparkRunner:
    """Runs one Plan; `on_event(kind, result)` is called with kind in started/finished/failed/skipped."""

    def __init__(self, spark: SparkSession, plan: Plan, functions: dict[str, Transformation],
                 store: TableStore, max_parallel: int = 4, fail_fast: bool = False,
                 on_event: EventHandler | None = None, table_timeout: float | None = None,
                 consumers: Consumers | None = None):
        self.spark = spark
        self.plan = plan
        self.functions = functions
        self.store = store
        self.max_parallel = max(1, max_parallel)
        self.fail_fast = fail_fast
        self.on_event = on_event or (lambda kind, result: None)
        self.materializer = Materializer(store, Expectations(spark, plan.config))
        self.table_timeout = table_timeout
        self.consumers = consumers or Consumers()
        self.abandoned: set[str] = set()  # timed-out tables: their threads must not write or report
        self._new_columns: dict[str, list[str]] = {}  # per table: what its additive contract let through
        self._landed: dict[str, dict[str, int]] = {}  # per table: rows its incremental database reads landed
        self._run_tag = f"ldp-{uuid.uuid4().hex[:12]}"
        self._connect = type(spark).__module__.startswith("pyspark.sql.connect")

    def run(self) -> RunResult:
        self.store.ensure_schema()
        self._check_existing_inputs()
        run = RunResult("spark", [TableResult(t.name, t.layer) for t in self.plan.tables],
                        run_id=self.consumers.run_id)
        with commits_tagged(self.spark, run.run_id):  # each Delta commit names the run (`history`)
            run_plan(self.plan, self._run_table, {t.name: t for t in run.tables}, self.max_parallel,
                     self.fail_fast, self.table_timeout, self.on_event, self._abandon)
        run.finished_at = time.time()
        self.consumers.run_finished(run)
        return run

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

    def _abandon(self, name: str) -> None:
        """A table past its timeout (the scheduler reports it failed): its thread may not write, and
        its Spark jobs are cancelled where the session can."""
        self.abandoned.add(name)
        if self._connect:  # classic Spark 4.2 cancels nothing here, or leaves a UDF task hanging
            self.spark.interruptTag(self._table_tag(name))

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
            self._track_call_sites()
            stats = self._materialize(table)
        except Exception as exc:  # noqa: BLE001 - a table's failure is reported, not raised
            log.info("table %s failed%s", table.name, self._jvm_trace(exc), exc_info=exc)  # with --verbose
            error = describe_error(exc, [f for f in [code_file(self.functions.get(table.name))] if f])
        finally:
            if self._connect:
                self.spark.removeTag(tag)
        if table.name in self.abandoned:  # already reported as timed out
            return
        result.landed = self._landed.pop(table.name, {})  # landed rows stay landed, even if the table failed
        if stats is not None:
            result.rows_written = stats.rows_written
            result.rows_total = self.store.rows_held(table.output, table.name, stats.rows_written)
            result.rows_quarantined = stats.quality.rows_quarantined
            result.rows_dropped = stats.quality.rows_dropped
            result.checks = stats.quality.checks
            result.changes = stats.changes
            result.flows = stats.flows
            result.new_columns = self._new_columns.pop(table.name, [])
        result.status, result.error = (TableStatus.SUCCESS, None) if error is None else (TableStatus.FAILED, error)
        result.seconds = round(time.perf_counter() - started, 3)
        if result.succeeded:
            self.consumers.table_written(table, result, table_reader(
                lambda: self.store.read(table.name),
                (lambda after: self.store.read_after(table.name, after)) if table.output.appends else None))
        self.on_event("finished" if result.succeeded else "failed", result)

    def _track_call_sites(self) -> None:
        """Let PySpark record the user's call sites in this worker thread (`track_call_sites`), so a
        Spark error raised later, at the write, can name the transformation's line. Spark Connect
        records call sites without this."""
        if not self._connect:
            track_call_sites(self.spark)

    def _jvm_trace(self, exc: BaseException) -> str:
        """For --verbose: the JVM stack trace the Python traceback leaves out (classic sessions)."""
        if self._connect or not log.isEnabledFor(logging.INFO):
            return ""
        trace = jvm_trace(self.spark, exc)
        return "\nJVM stack trace:\n" + trace if trace else ""

    def _materialize(self, table: TablePlan) -> WriteStats:
        if table.append_flows:
            return self._append_flows(table)
        if table.config.flows:
            return self._union_of_flows(table)
        df = self._computed(table, table)
        self.consumers.before_write(table, df)
        self._still_wanted(table.name)
        return self.materializer.materialize(table.config, df, accept=lambda: self._still_wanted(table.name),
                                             output=table.output)

    def _append_flows(self, table: TablePlan) -> WriteStats:
        """A streaming table's `flows:`, one after another, each appending what is new in its own input
        (a `once` backfill: all of it, a single time)."""
        per_flow = {}
        flows = table.append_flows
        for flow, (reading, df) in zip(flows, self._flow_frames(table, [flow.name for flow in flows])):
            self._still_wanted(table.name)
            per_flow[flow.name] = self.materializer.append_flow(
                table.config, flow, reading.config, df, accept=lambda: self._still_wanted(table.name))
        return WriteStats.of_flows(per_flow)

    def _union_of_flows(self, table: TablePlan) -> WriteStats:
        """A table with `flows:` in batch mode: recomputed as all its flows' rows, each checked as its
        flow reads."""
        names = [flow.name for flow in table.config.flows]
        flows = [(reading.config, df) for reading, df in self._flow_frames(table, names)]
        self._still_wanted(table.name)
        return self.materializer.replace_flows(table.config, flows, accept=lambda: self._still_wanted(table.name))

    def _flow_frames(self, table: TablePlan, flows: list[str]) -> Iterator[tuple[TablePlan, DataFrame]]:
        """How each named flow of the table reads and the rows it computes, shown to the consumers
        before they are written; lazily, so a streaming flow is written before the next one computes."""
        for flow in flows:
            reading = table.flow_plan(flow)
            df = self._computed(table, reading)
            self.consumers.before_write(table, df)
            yield reading, df

    def _still_wanted(self, name: str) -> None:
        """Raise once the run gave up on the table (timed out): nothing of it may be written."""
        if name in self.abandoned:
            raise TimeoutError(f"table {name} was abandoned after --table-timeout")

    def _computed(self, table: TablePlan, reading: TablePlan) -> DataFrame:
        """The rows `reading` (the table, or one of its flows) computes, held to the table's contract."""
        flow_stream = reading is not table and reading.streaming  # a flow streams its upstream tables
        read = self.store.read_stream if flow_stream else self.store.read  # a table reads them whole
        base_dir = self.plan.config.base_dir
        if reading.config.source is not None and reading.config.source.lands:
            landed = land(self.spark, reading.config, self.store.fqn, base_dir)
            self._landed.setdefault(table.name, {})[reading.name] = landed.rows
        inputs = transformation_inputs(self.spark, reading, base_dir, read, landing=self.store.fqn)
        df = call_transformation(self.functions[reading.name], inputs, self.spark)
        if not isinstance(df, DataFrame):
            raise TypeError(f"the transformation returned {type(df).__name__}, expected a DataFrame")
        # a broken contract fails the table before anything is written; an additive one reports its new columns
        self._new_columns[table.name] = check_schema(table.config, df)
        return guarded(table.config, df, schema_checked=True)
