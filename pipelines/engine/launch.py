"""One launch: a run's options to its `RunResult`, whichever runner runs it.

The runner comes from one table (`RUNNERS`); the consumers of finished tables and runs (monitors,
inventory, report, sinks, run records) are assembled here once, for every runner. The CLI only
prints what a launch returns, so `ldp_engine run` stays a thin command.
"""
from __future__ import annotations

import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import click

from pipelines.core.errors import UsageError, describe_error
from pipelines.core.graph import Selection
from pipelines.core.plan import Mode, Plan
from pipelines.core.results import RunResult, new_run_id
from pipelines.core.seam import Consumers
from pipelines.core.variables import Overrides

from .state_lock import state_lock

Echo = Callable[[str], None]


def to_stderr(line: str) -> None:
    """Progress goes to stderr, so `--format json` leaves only JSON on stdout."""
    click.echo(line, err=True)


@dataclass(frozen=True)
class RunOptions:
    """How to run: the `ldp_engine run` options, grouped (each declared once in `params`)."""

    config: Path
    selection: Selection = Selection()
    overrides: Overrides = Overrides()  # --var and --var-file
    mode: Mode = "batch"
    runner: str = "spark"
    pipeline_id: str | None = None
    full_refresh: bool = False
    dry_run: bool = False
    max_parallel: int = 4
    fail_fast: bool = False
    table_timeout: float | None = None
    catalog: str | None = None
    schema: str | None = None
    state_dir: str | None = None
    run_id: str | None = None  # None: a new id
    wait: float = 0
    verbose: bool = False


@dataclass(frozen=True)
class Launched:
    """What a launch leaves the CLI to print: the run (None for a dry run that only plans), the files
    its consumers wrote (e.g. the report), and whether threads were left stuck in user code."""

    plan: Plan
    run: RunResult | None
    outputs: tuple[tuple[str, Path], ...] = ()
    abandoned: bool = False


@dataclass(frozen=True)
class Launch:
    """What a runner needs: the loaded project, the options, the state folder, the run's one Lakebase
    (connected only if used) and where progress goes."""

    project: Any
    options: RunOptions
    state: Path
    lakebase: Any
    echo: Echo


@dataclass(frozen=True)
class Runner:
    """One way to run a plan, and whether it writes the local state folder (then it holds its lock and
    starts the local services its tables use, such as the embedded Kafka broker)."""

    start: Callable[[Launch], Launched]
    holds_state_lock: bool

    @property
    def runs_locally(self) -> bool:
        return self.holds_state_lock


def launch(options: RunOptions, echo: Echo = to_stderr) -> Launched:
    """Load the project, pick its runner from `RUNNERS` and run it (or only plan, on a dry run)."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.core.config import load_config
    from pipelines.lakebase.connection import Lakebase

    from . import project as projects
    from .embedded_kafka import embedded_kafka

    state = resolve_state(options.state_dir)
    # one Lakebase per run (published rules, inventory, sinks), connected only if one of them needs it
    config = load_config(options.config, options.overrides)  # read once: its Lakebase serves the published checks too
    with Lakebase(config.lakebase, state) as lakebase:
        def load(selection: Selection) -> Any:
            return projects.load_project(config, selection, options.mode, catalog=options.catalog,
                                         schema=options.schema,
                                         published=lambda loaded: projects.read_published(loaded, lakebase))

        project = load(options.selection)
        runner = runner_for(options)
        if options.dry_run and options.runner != "sdp":  # the SDP dry run resolves the graph, on its catalog
            return Launched(project.plan, None)
        with state_lock(state, options.wait) if runner.holds_state_lock else nullcontext():
            with embedded_kafka(project.plan, state, echo) if runner.runs_locally else nullcontext() as kafka:
                if kafka is not None and kafka.skipped:  # the broker did not start: the rest runs without it
                    project = load(replace(options.selection, exclude=(*options.selection.exclude, *kafka.skipped)))
                return runner.start(Launch(project, options, state, lakebase, echo))


def runner_for(options: RunOptions) -> Runner:
    """The runner `--runner` names, once its own required options are there."""
    if options.runner == "pipeline" and not options.pipeline_id:
        raise UsageError("--runner pipeline needs --pipeline-id (or LDP_PIPELINE_ID)")
    return RUNNERS[options.runner]


def consumers_for(launch: Launch, catalog_state: Path | None = None, write_sinks: bool = True,
                  stored: Path | None = None) -> Consumers:
    """Every consumer of finished tables and runs (the after-table seam). `catalog_state` is where the
    runner's catalog keeps its tables (the SDP runner has its own), for the monitors' metric tables.
    Without `write_sinks` (a Databricks pipeline update), `ldp_engine sinks publish` writes them.
    `stored` is the local folder whose `warehouse/` holds the run's tables, read for the report's plan
    (None: they are not local files)."""
    from pipelines.consumers.monitor import MonitorConsumer
    from pipelines.consumers.report import RunReport
    from pipelines.consumers.run_record import RunRecord

    plan, state, lakebase = launch.project.plan, launch.state, launch.lakebase
    run_id = launch.options.run_id or new_run_id()
    consumers: list[Any] = []
    if any(t.config.monitor for t in plan.tables):
        consumers.append(MonitorConsumer(plan, catalog_state or state))
    if plan.config.lakebase.inventory:
        from pipelines.consumers.inventory import RunInventory

        consumers.append(RunInventory(lakebase, plan, launch.project.rules_versions))
    consumers.append(RunReport(state / "reports", plan, catalog_state or state, _history(plan, state, lakebase),
                               planned=None if stored is None else _planned(launch, stored)))
    if write_sinks and any(t.config.sinks for t in plan.tables):  # last of those using the Lakebase: it closes it
        from pipelines.catalog.sinks import SinkRun
        from pipelines.consumers.sinks import TableSinks

        consumers.append(TableSinks(SinkRun(run_id, lakebase, plan.config.base_dir, launch.project.sink_functions,
                                            state)))
    return Consumers([*consumers, RunRecord(state / "runs", plan)], run_id=run_id)


def _planned(launch: Launch, catalog: Path) -> list[dict[str, Any]] | str:
    """What this run is about to change in its catalog (`ldp_engine plan --no-schemas`, read before it
    starts), for its report; why not, if the stored tables cannot be read."""
    from .plan_cli import local_changes

    try:
        _, changes = local_changes(launch.project.plan.config, list(launch.project.plan.order), launch.state,
                                   catalog)
    except Exception as exc:  # noqa: BLE001 - the plan informs the report; it never stops the run
        return f"the plan could not be read: {describe_error(exc)}"
    return [change.to_dict() for change in changes]


def _history(plan: Any, state: Path, lakebase: Any) -> Any:
    """Each table's recent runs for the report: from the run inventory when it is kept, else (or if it
    cannot be read) from the local run records."""
    from pipelines.report.history import from_records

    def history(tables: list[str], before: float) -> dict[str, list[dict[str, Any]]]:
        if plan.config.lakebase.inventory:
            from pipelines.lakebase.inventory import table_history

            try:
                return table_history(lakebase.connect, plan.config.lakebase.meta_schema, tables)
            except Exception:  # noqa: BLE001 - the inventory's failure is reported on its own
                pass
        return from_records(state / "runs", tables, before=before + 1e-3)

    return history


def _launched(plan: Plan, run: RunResult, consumers: Consumers, abandoned: bool = False) -> Launched:
    """The finished run and the files its consumers wrote (read after the run: they are set at its end)."""
    outputs = tuple((c.name, c.path) for c in consumers.consumers if getattr(c, "path", None))
    return Launched(plan, run, outputs, abandoned)


def run_spark(launch: Launch) -> Launched:
    """The plan on this process's Spark session, consumers called in-process after each table."""
    from pipelines.catalog.session import get_spark, warehouse_root
    from pipelines.catalog.storage import TableStore
    from pipelines.runners.spark import SparkRunner

    plan, state, options = launch.project.plan, launch.state, launch.options
    launch.echo(f"Starting Spark for {len(plan.tables)} table(s) ({plan.mode} mode)...")
    spark = get_spark(state, app_name=plan.pipeline.name, verbose=options.verbose, packages=plan.local_packages)
    store = TableStore(spark, plan.pipeline, state)
    consumers = consumers_for(launch, stored=warehouse_root(spark))
    runner = SparkRunner(spark, plan, launch.project.functions, store, max_parallel=options.max_parallel,
                         fail_fast=options.fail_fast, on_event=functools.partial(_progress, launch.echo),
                         table_timeout=options.table_timeout, consumers=consumers)
    run = runner.run()
    return _launched(plan, run, consumers, abandoned=bool(runner.abandoned))


def _progress(echo: Echo, kind: str, result: Any) -> None:
    stamp = time.strftime("%H:%M:%S")
    if kind == "started":
        text = f"{result.name} [{result.layer}] started"
    elif kind == "finished":
        text = f"{result.name} finished: {result.rows_written} rows in {result.seconds:.1f}s"
    elif kind == "failed":
        text = f"{result.name} FAILED after {result.seconds:.1f}s: {result.error}"
    else:
        text = f"{result.name} skipped: {result.error}"
    echo(f"[{stamp}] {text}")


def run_sdp(launch: Launch) -> Launched:
    """The plan as a local Spark Declarative Pipeline. The run (its id, its start) exists before the
    pipeline process starts, so the records carry the run's real start and end."""
    from pipelines.core.seam import replay
    from pipelines.ldp.registrar import batch_backfills
    from pipelines.ldp.sdp import SdpRun, dry_run_summary, reads_over_connect, summary

    from . import sdp_driver

    plan, state, options, echo = launch.project.plan, launch.state, launch.options, launch.echo
    refused = [problem for table in plan.tables for problem in batch_backfills(table)]
    if refused:  # before a JVM starts
        raise UsageError(refused)
    consumers = None if options.dry_run else consumers_for(launch, state / "sdp", stored=state / "sdp")
    run = RunResult("sdp", run_id=consumers.run_id if consumers else options.run_id or new_run_id())
    sdp = SdpRun(plan, plan.config.path, state, Path(sdp_driver.__file__), full_refresh=options.full_refresh,
                 verbose=options.verbose, rules_file=_published_rules_file(launch.project, state),
                 run_id=run.run_id)
    echo(f"Starting Spark Declarative Pipelines for {len(plan.tables)} table(s) "
         f"({plan.mode} mode, state in {sdp.root})...")
    _warn_interrupted_refreshes(plan, sdp.root, echo)
    raw = sdp.execute(dry_run=options.dry_run, echo=echo, hold=consumers is not None and reads_over_connect(plan))
    try:
        if raw.get("completed") is False:  # the process died: say why here too, not only in the summary
            echo(f"error: {raw['errors'][0]}")
        if consumers is None:
            return Launched(plan, dry_run_summary(raw))
        return _launched(plan, replay(plan, summary(plan, raw, run, sdp.root), consumers, *sdp.readers()),
                         consumers)
    finally:
        sdp.release()


def _warn_interrupted_refreshes(plan: Any, catalog: Path, echo: Echo) -> None:
    """A refresh killed between its TRUNCATE and its WRITE left a table empty; its rows are one
    version back. This run recomputes it; `restore` brings them back at once (read from the log)."""
    from pipelines.catalog.reader import stored_table

    for table in plan.tables:
        stored = stored_table(catalog, plan.pipeline.schema_name, table.name)
        version = stored.interrupted_refresh() if stored is not None and stored.is_delta else None
        if version is not None:
            echo(f"warning: {table.name} was left empty by an interrupted refresh; this run recomputes "
                 f"it (its previous rows: ldp_engine restore {table.name} --version {version})")


def _published_rules_file(project: Any, state: Path) -> Path | None:
    """The published checks the SDP driver must enforce: exactly the versions read by this process."""
    if not project.published:
        return None
    from pipelines.core.rules import to_json

    rules_file = state / "sdp" / "published_rules.json"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    rules_file.write_text(to_json(dict(project.published)), encoding="utf-8")
    return rules_file


def run_pipeline(launch: Launch) -> Launched:
    """An update of the Databricks pipeline `--pipeline-id`, followed to its end; the consumers then
    read the tables it stored. Its sinks are written by the job's `sinks publish` task, not here."""
    from databricks.sdk import WorkspaceClient

    from pipelines.core.seam import replay
    from pipelines.ldp.update import PipelineUpdate

    plan, options = launch.project.plan, launch.options
    update = PipelineUpdate(WorkspaceClient(), str(options.pipeline_id), echo=launch.echo)
    update_id = update.start(plan, options.full_refresh)
    final_state = update.follow(update_id)
    consumers = consumers_for(launch, write_sinks=False)  # the job's sinks task writes them
    run = update.summary(plan, update_id, final_state)
    if any(t.config.sinks for t in plan.tables):
        run.details["sinks"] = "not written by --runner pipeline: ldp_engine sinks publish (the job's sinks task)"
    return _launched(plan, replay(plan, run, consumers, update.reader(plan)), consumers)


RUNNERS: Mapping[str, Runner] = {
    "spark": Runner(run_spark, holds_state_lock=True),
    "sdp": Runner(run_sdp, holds_state_lock=True),
    "pipeline": Runner(run_pipeline, holds_state_lock=False),
}
"""`--runner NAME` → how it runs; a new runner is one function and one row here."""
