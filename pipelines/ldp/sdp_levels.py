"""How a local Spark Declarative Pipelines run executes a plan, inside the driver process
(`pipelines/engine/sdp_driver.py`, started by Spark's own launcher `spark-class
org.apache.spark.deploy.SparkPipelines`, as `spark-pipelines` does, with Spark Connect).

Given the spec and the planned tables, it runs the plan **one level per dataflow graph**: the
tables of a level are defined in a graph of their own and run, and the next level's graph is built
only after that, reading the finished tables as plain catalog tables. A single graph of the whole
plan is what `spark-pipelines run` does, and with pyspark 4.2 / 4.3 it is wrong in two ways:

- Spark Connect analyzes some DataFrame operations eagerly when a flow is defined (`withColumn`,
  `withColumnRenamed` try it first; `drop`, `dropDuplicates` require it). On a rerun, when the
  upstream table already exists, that analysis succeeds and the flow's plan holds a resolved
  relation instead of a name: the graph no longer sees the dependency (apache/spark#57897), runs the
  flow at the same time as its upstream flow, which truncates the table first, and stores 0 rows.
- On a first run, `drop`/`dropDuplicates` on a dataset of the same graph fail (TABLE_OR_VIEW_NOT_FOUND):
  it does not exist yet when the flow is defined.

Per level, every upstream table exists and is final when a flow is defined, so both are moot. Before
anything runs, every query function is called once as a pipeline calls it, so a transformation that
analyzes or collects fails before any table is written. After the run it counts the rows of each
table that succeeded in it (a streaming table's also before, since it appends) through the same
session, each level's as soon as it finishes while the next one runs, and checks that no table holds
fewer rows than its query gives from the stored inputs; `pipelines/engine/sdp_driver.py` (the process)
writes the JSON result file for `ldp_engine --runner sdp`. Events go to stderr.

CDC tables (`cdc:`, `snapshot_cdc:`) are applied by the engine itself after their level's graph, in the
same session and catalog, by the Spark runner's own materializer: pyspark 4.2's `create_auto_cdc_flow`
has SCD type 1 only, no `ignore_null_updates` or truncates, and no snapshot flow, and one code path
gives both local runners the same rows.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import urlparse

from pipelines.core.errors import describe_error
from pipelines.ldp.flow_errors import flow_error, run_error
from pipelines.ldp.flow_events import FLOW_STATUS, flow_in, state_in
from pipelines.ldp.registrar import flow_datasets, table_datasets

PROGRESS_PREFIX = "[sdp] "
progress = logging.getLogger("ldp.sdp.progress")  # lines the runner always shows (prefixed)
log = logging.getLogger("ldp.sdp")  # details it shows with --verbose only (unprefixed)


def configure_logging() -> None:
    """Both loggers to stderr, which the runner reads; progress lines carry PROGRESS_PREFIX."""
    for logger, pattern in ((progress, PROGRESS_PREFIX + "%(message)s"), (log, "%(message)s")):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(pattern))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


@dataclass
class FlowTracker:
    """Per-dataset status and duration, from the run's event messages; `aliases`: the dataset each flow
    not named after its dataset writes (`flows:`), whose flows together make the dataset's status."""

    aliases: dict[str, str] = field(default_factory=dict)
    started: dict[str, datetime] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    failed_flows: dict[str, str | None] = field(default_factory=dict)  # flow -> its error, while failed

    def update(self, message: str, at: datetime) -> None:
        flow, state = flow_in(message), state_in(message)
        if flow is None or state is None:
            return
        name = self.aliases.get(flow, flow)
        if state != "QUEUED":  # time from the start of work, not from waiting for upstream flows
            self.started.setdefault(name, at)
        if flow in self.failed_flows and state not in FLOW_STATUS:  # SDP restarts a failed flow (a retry):
            self._retried(flow, name)  # its failure stands only if the last attempt fails too
        if FLOW_STATUS.get(state) == "failed":
            self.failed_flows.setdefault(flow, flow_error(message))
        if state in FLOW_STATUS and self.status.get(name) != "failed":
            self.status[name] = FLOW_STATUS[state]
            self.seconds[name] = round((at - self.started[name]).total_seconds(), 3)
            error = flow_error(message) if state == "FAILED" else None
            if error:  # the first message and its causes: on Delta the first only names the write
                self.errors[name] = error
            elif state == "SKIPPED":
                self.errors[name] = "upstream table failed"

    def _retried(self, flow: str, name: str) -> None:
        """Forget a restarted flow's failure; its dataset stays failed if another of its flows is."""
        del self.failed_flows[flow]
        still = [error for other, error in self.failed_flows.items() if self.aliases.get(other, other) == name]
        if not still:
            self.status.pop(name, None)
            self.errors.pop(name, None)
        elif still[0]:
            self.errors[name] = still[0]


def follow(events: Iterable[dict[str, Any]], tracker: FlowTracker) -> None:
    for result in events:
        if "pipeline_event_result" not in result:
            continue
        event = result["pipeline_event_result"].event
        at = event.timestamp.ToDatetime().replace(tzinfo=timezone.utc)
        tracker.update(event.message, at)
        progress.info("%s %s", f"{at:%H:%M:%S}", event.message)


QUERIES_AT_ONCE = 4  # counting queries in flight at once: each is mostly a Spark Connect round trip
Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def concurrently(work: Callable[[Item], Outcome], items: Iterable[Item]) -> list[Outcome]:
    """`[work(item) for item in items]`, a few at a time: the driver's waits on the server overlap."""
    items = list(items)
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(QUERIES_AT_ONCE, len(items)), thread_name_prefix="ldp-count") as pool:
        return list(pool.map(work, items))


def count_rows(spark: Any, database: str, names: Iterable[str]) -> list[tuple[str, int | None]]:
    def count(name: str) -> tuple[str, int | None]:
        try:
            return name, spark.read.table(f"`{database}`.`{name}`").count()
        except Exception:  # noqa: BLE001 - a table that was never written has no rows to report
            return name, None

    return concurrently(count, names)


def expected_rows(registrar: Any, table: Any) -> dict[str, int]:
    """Rows each dataset of a table should hold: its query over the stored inputs, counted once."""
    from pyspark.sql import functions as F

    from pipelines.quality.enforce import ERRORS

    rows = registrar.batch_rows(table)
    datasets = table_datasets(table)
    if not table.config.has_expectations:
        return {datasets[0]: rows.count()}
    counts = rows.agg(F.count_if(F.col(ERRORS).isNull()).alias("valid"),
                      F.count_if(F.col(ERRORS).isNotNull()).alias("invalid")).first()
    return dict(zip(datasets, (int(counts["valid"]), int(counts["invalid"]))))


def merge_launcher_conf(environ: dict[str, str] | Any = os.environ) -> None:
    """Work around a PySpark 4.2 bug: the launcher hands `--conf` settings to the local Spark Connect
    server in chunks of 10 (PYSPARK_REMOTE_INIT_CONF_0..n), but the server start keeps only the last
    chunk, silently dropping the rest (the catalog location, the 127.0.0.1 binding...). Merging the
    chunks into one before the session starts keeps them all."""
    count = int(environ.get("PYSPARK_REMOTE_INIT_CONF_LEN", "0"))
    if count <= 1:
        return
    merged: dict[str, str] = {}
    for index in range(count):
        merged.update(json.loads(environ.pop(f"PYSPARK_REMOTE_INIT_CONF_{index}")))
    environ["PYSPARK_REMOTE_INIT_CONF_0"] = json.dumps(merged)
    environ["PYSPARK_REMOTE_INIT_CONF_LEN"] = "1"


CONNECT_PORT = "spark.connect.grpc.binding.port"


def connect_to_launcher_port(environ: dict[str, str] | Any = os.environ) -> int | None:
    """Point this process's Spark Connect client at the port the runner gave the server. PySpark 4.2
    starts the local server with the launcher's settings (its port included) but then connects to
    `sc://localhost` on the default port 15002 whatever the server's (only under SPARK_TESTING does it
    ask the server): two runs at once would each talk to whichever server holds 15002."""
    settings: dict[str, str] = {}
    for index in range(int(environ.get("PYSPARK_REMOTE_INIT_CONF_LEN", "0"))):
        settings.update(json.loads(environ[f"PYSPARK_REMOTE_INIT_CONF_{index}"]))
    if CONNECT_PORT not in settings:
        return None
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    port = int(settings[CONNECT_PORT])
    DefaultChannelBuilder.default_port = staticmethod(lambda: port)  # type: ignore[method-assign]
    return port


def count_failures(spark: Any, database: str, names: Iterable[str]) -> dict[str, dict[str, int]]:
    """Rows each check failed, per dataset, from the stored `_errors`/`_warnings` of failing rows only."""
    from pyspark.sql import functions as F

    def failures(name: str) -> tuple[str, dict[str, int] | None]:
        try:
            stored = spark.read.table(f"`{database}`.`{name}`")
            results = [F.coalesce(c, F.array()) for c in ("_errors", "_warnings") if c in stored.columns]
            failing = stored.where(" OR ".join(f"{c} IS NOT NULL" for c in ("_errors", "_warnings")
                                               if c in stored.columns))
            rows = (failing.select(F.explode(F.concat(*results)).alias("result"))
                    .groupBy(F.col("result.name").alias("check")).count().collect())
            return name, {row["check"]: int(row["count"]) for row in rows}
        except Exception:  # noqa: BLE001 - a table that was never written has no failures to report
            return name, None

    return {name: counts for name, counts in concurrently(failures, names) if counts is not None}


class ProbeRegistry:
    """Calls every flow's query function the way a pipeline does at registration (inside the pipeline
    analysis context), defining nothing: a function that analyzes or collects fails here, before any
    table of the run is written."""

    def __init__(self, spark: Any, graph_id: str):
        self.spark, self.graph_id = spark, graph_id

    def register_output(self, output: Any) -> None:
        pass

    def register_flow(self, flow: Any) -> None:
        from pyspark.pipelines.add_pipeline_analysis_context import add_pipeline_analysis_context

        with add_pipeline_analysis_context(spark=self.spark, dataflow_graph_id=self.graph_id,
                                           flow_name=flow.name):
            flow.func()

    def register_auto_cdc_flow(self, flow: Any) -> None:
        pass

    def register_sql(self, sql_text: str, file_path: Path) -> None:
        pass


@dataclass
class LevelRunner:
    """Runs a plan's tables one level per dataflow graph (see the module docstring for why)."""

    spark: Any
    spec: Any
    registrar: Any
    full_refresh: bool
    database: str
    storage: str
    tracker: FlowTracker = field(default_factory=FlowTracker)
    errors: list[str] = field(default_factory=list)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)  # per CDC table: the events it applied

    def __post_init__(self) -> None:
        self.tracker.aliases.update(flow_datasets(self.registrar.plan))

    def new_graph(self) -> str:
        from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph

        return create_dataflow_graph(self.spark, default_catalog=self.spec.catalog,
                                     default_database=self.database, sql_conf=self.spec.configuration)

    def define(self, registry: Any, tables: Iterable[Any]) -> None:
        from pyspark.pipelines.graph_element_registry import graph_element_registration_context

        with graph_element_registration_context(registry):
            self.registrar.register(tables)

    def probe(self) -> None:
        """Every query function of the plan's graph tables, called once; raises the first failure."""
        self.define(ProbeRegistry(self.spark, self.new_graph()),
                    [t for t in self.registrar.plan.tables if not _applied_by_engine(t)])

    def dry_run(self) -> None:
        """Resolve every flow as the run would, level by level, on empty inputs, in a scratch schema
        and storage dropped afterwards. (One graph of the whole plan cannot be resolved before its
        tables exist when a transformation uses drop/dropDuplicates: see the module docstring.)"""
        real, scratch = self.database, f"{self.database}__ldp_dry_run"
        self.spark.sql(f"DROP SCHEMA IF EXISTS `{scratch}` CASCADE")
        self.spark.sql(f"CREATE SCHEMA `{scratch}`")
        try:
            for name in self.registrar.plan.existing_inputs:  # outside the selection: read, not run
                self.spark.sql(f"CREATE VIEW `{scratch}`.`{name}` AS SELECT * FROM `{real}`.`{name}` WHERE false")
            self.database, self.storage = scratch, self.storage.rstrip("/") + "/dry-run"
            self.registrar.empty_sources = True
            self.run()
        finally:
            self.spark.sql(f"DROP SCHEMA IF EXISTS `{scratch}` CASCADE")
            shutil.rmtree(urlparse(self.storage).path, ignore_errors=True)
            self.database, self.storage = real, self.storage.removesuffix("/dry-run")
            self.registrar.empty_sources = False

    def run(self, level_done: Callable[[list[Any]], None] | None = None) -> None:
        """Every level in turn; `level_done(tables)` is handed each level's succeeded tables as soon
        as it finishes (the next level never writes them)."""
        plan = self.registrar.plan
        unfinished: set[str] = set()  # failed or skipped: their downstream tables are skipped
        for level in plan.levels:
            ready = []
            for table in (plan.table(name) for name in level):
                blocked = [name for name in table.upstream_in_plan if name in unfinished]
                if blocked:
                    self._mark(table, "skipped", f"upstream table '{blocked[0]}' failed")
                    unfinished.add(table.name)
                else:
                    ready.append(table)
            in_graph = [t for t in ready if not _applied_by_engine(t)]
            graph_id, defined = self._define_level(in_graph)
            unfinished.update(t.name for t in in_graph if t not in defined)
            if defined:
                datasets = [name for table in defined for name in table_datasets(table)]
                self._start(graph_id, datasets if self.full_refresh else [])
                unfinished.update(t.name for t in defined if not self.succeeded(t))
            for table in ready:
                if _applied_by_engine(table) and not self._apply_changes(table):
                    unfinished.add(table.name)
            if level_done is not None:
                level_done([t for t in ready if self.succeeded(t)])

    def _apply_changes(self, table: Any) -> bool:
        """A CDC table applied by the Spark runner's materializer in this session (see the module
        docstring); its datasets get a status as a flow's would. Returns whether it succeeded."""
        from pipelines.catalog.storage import TableStore
        from pipelines.quality.materialize import Materializer

        started = datetime.now(timezone.utc)
        settings = self.registrar.plan.pipeline.model_copy(update={"schema_name": self.database})
        store = TableStore(self.spark, settings, Path(urlparse(self.storage).path) / "engine")
        previous = self.spark.catalog.currentDatabase()
        self.spark.catalog.setCurrentDatabase(self.database)  # inputs are read by their own names
        try:
            if self.full_refresh:
                store.drop_cdc_events(table.config)
            rows = self.registrar.input_rows(table)
            stats = Materializer(store, self.registrar.expectations).materialize(table.config, rows,
                                                                                   output=table.output)
            self.changes[table.name] = dict(stats.changes or {})
            status, error = "success", None
        except Exception as exc:  # noqa: BLE001 - reported on the table; others still run
            log.debug("applying the changes of %s failed", table.name, exc_info=True)
            status, error = "failed", describe_error(exc)
        finally:
            self.spark.catalog.setCurrentDatabase(previous)
        seconds = round((datetime.now(timezone.utc) - started).total_seconds(), 3)
        progress.info("%s Flow '%s' has %s (applied by the engine).", f"{datetime.now(timezone.utc):%H:%M:%S}",
                      table.name, "COMPLETED" if error is None else "FAILED")
        for name in table_datasets(table):
            self.tracker.status[name], self.tracker.seconds[name] = status, seconds
            if error:
                self.tracker.errors[name] = error
        return error is None

    def _define_level(self, tables: list[Any]) -> tuple[str, list[Any]]:
        """Define each table in a new graph; a table whose definition fails is failed, not run."""
        from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry

        graph_id = self.new_graph()
        registry = SparkConnectGraphElementRegistry(self.spark, graph_id)
        defined = []
        for table in tables:
            try:
                self.define(registry, [table])
                defined.append(table)
            except Exception as exc:  # noqa: BLE001 - reported on the table; others still run
                log.debug("defining %s failed", table.name, exc_info=True)
                self._mark(table, "failed", describe_error(exc))
        return graph_id, defined

    def _start(self, graph_id: str, full_refresh: list[str]) -> None:
        from pyspark.pipelines.spark_connect_pipeline import start_run

        try:
            follow(start_run(self.spark, graph_id, full_refresh=full_refresh, full_refresh_all=False,
                             refresh=None, dry=False, storage=self.storage), self.tracker)
        except Exception as exc:  # noqa: BLE001 - the run failed; flows say which
            self.errors.append(run_error(exc))

    def _mark(self, table: Any, status: str, error: str) -> None:
        self.tracker.status[table.name] = status
        self.tracker.errors[table.name] = error

    def succeeded(self, table: Any) -> bool:
        """Every dataset of the table completed in this run."""
        return all(self.tracker.status.get(name) == "success" for name in table_datasets(table))

    def expected(self, table: Any) -> dict[str, int]:
        """Rows each dataset of a succeeded table should hold, from the stored inputs (none for a CDC
        target, which is no query's result, or when it cannot be recomputed: the stored counts stand)."""
        if _applied_by_engine(table):
            return {}
        try:
            return expected_rows(self.registrar, table)
        except Exception:  # noqa: BLE001 - nothing to compare with
            log.warning("could not recompute %s to verify it", table.name, exc_info=True)
            return {}


def _applied_by_engine(table: Any) -> bool:
    """Whether the engine applies the table itself rather than a dataflow graph (CDC tables)."""
    from pipelines.core.outputs import CdcTarget

    return isinstance(table.output, CdcTarget)
