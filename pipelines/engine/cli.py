"""The `ldp_engine` command line: run (the default command), validate, graph.

Exit codes: 0 ok, 1 invalid config or validation failure, 2 usage error, 3 run-time failure.
User mistakes are printed as messages, never as tracebacks (unless --verbose).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME, UsageError
from pipelines.core.graph import split_names
from pipelines.core.results import RunResult, new_run_id
from pipelines.core.seam import Consumers

from . import params
from .options import HARD_EXIT, config_path, handle_errors, selection
from .state_lock import state_lock


class DefaultRunGroup(click.Group):
    """A group whose default subcommand is `run`, so `ldp_engine --tags x --mode batch` runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="databricks_etl_framework")
def cli() -> None:
    """Config-driven Lakeflow Declarative Pipelines: validate, plan and run the tables of config.yml.

    Without a subcommand, `run` is implied: `ldp_engine --tags daily,critical --mode batch`.
    """


@cli.command()
@params.config
@params.selection
@params.mode
@params.runner
@params.pipeline_id
@params.full_refresh
@params.dry_run
@params.output_format
@params.max_parallel
@params.fail_fast
@params.table_timeout
@params.target
@params.state_dir
@params.run_id
@params.wait
@params.verbose
@handle_errors
def run(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
        mode: str, runner: str, pipeline_id: str | None, full_refresh: bool, dry_run: bool,
        output_format: str, max_parallel: int, fail_fast: bool, table_timeout: float | None,
        catalog: str | None, schema: str | None, state_dir: str | None, run_id: str | None, wait: float,
        verbose: bool) -> int:
    """Select, order and materialize tables (the default command)."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.core.config import load_config
    from pipelines.lakebase.connection import Lakebase

    from .project import load_project, read_published

    path, state = config_path(config), resolve_state(state_dir)
    # one Lakebase per run (published rules, inventory, sinks), connected only if one of them needs it
    with Lakebase(load_config(path).lakebase, state) as lakebase:
        project = load_project(path, selection(tags, match, select_, exclude), mode,  # type: ignore[arg-type]
                               catalog=catalog, schema=schema,
                               published=lambda loaded: read_published(loaded, lakebase))
        plan, context = project.plan, _RunContext(lakebase, run_id)
        if runner == "pipeline" and not pipeline_id:
            raise UsageError("--runner pipeline needs --pipeline-id (or LDP_PIPELINE_ID)")
        if runner == "pipeline" and not dry_run:
            return _run_pipeline_update(project, str(pipeline_id), full_refresh, output_format, state, context)
        if dry_run and runner != "sdp":  # the SDP dry run resolves the pipeline graph, on its catalog
            from .render import plan_text
            click.echo(json.dumps(plan.to_dict()) if output_format == "json" else plan_text(plan))
            return EXIT_OK
        with state_lock(state, wait):
            if runner == "sdp":
                return _run_sdp(project, full_refresh, dry_run, output_format, state, verbose, context)
            return _run_plan(project, output_format, max_parallel, fail_fast, table_timeout, state, verbose, context)


def _report(run: RunResult, output_format: str) -> int:
    from .render import summary_text

    click.echo(json.dumps(run.to_dict()) if output_format == "json" else summary_text(run))
    return EXIT_OK if run.succeeded else EXIT_RUNTIME


@dataclass(frozen=True)
class _RunContext:
    """What a run's consumers share: its one Lakebase (connected only if used) and its id (None: a new one)."""

    lakebase: Any
    run_id: str | None


def _consumers(project: Any, state: Path, context: _RunContext, catalog_state: Path | None = None,
               write_sinks: bool = True) -> Consumers:
    """Every consumer of finished tables and runs (the after-table seam). `catalog_state` is where the
    runner's catalog keeps its tables (the SDP runner has its own), for the monitors' metric tables.
    Without `write_sinks` (a Databricks pipeline update), `ldp_engine sinks publish` writes them."""
    from pipelines.consumers.lakebase_sinks import LakebaseSinks
    from pipelines.consumers.monitor import MonitorConsumer
    from pipelines.consumers.report import RunReport
    from pipelines.consumers.run_record import RunRecord
    from pipelines.core.results import new_run_id

    plan = project.plan
    run_id = context.run_id or new_run_id()
    lakebase = context.lakebase
    consumers: list[Any] = []
    if any(t.config.monitor for t in plan.tables):
        consumers.append(MonitorConsumer(plan, catalog_state or state))
    if plan.config.lakebase.inventory:
        from pipelines.consumers.inventory import RunInventory

        consumers.append(RunInventory(lakebase, plan, project.rules_versions))
    consumers.append(RunReport(state / "reports", plan, catalog_state or state, _history(plan, state, lakebase)))
    if write_sinks and any(t.config.sinks for t in plan.tables):  # last of those using the Lakebase: it closes it
        consumers.append(LakebaseSinks(lakebase, run_id))
    return Consumers([*consumers, RunRecord(state / "runs", plan)], run_id=run_id)


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


def _finish(run: RunResult, consumers: Consumers, output_format: str) -> int:
    code = _report(run, output_format)
    for consumer in consumers.consumers:
        if getattr(consumer, "path", None):
            click.echo(f"{consumer.name.replace('_', ' ')}: {consumer.path}", err=True)
    return code


def _run_sdp(project: Any, full_refresh: bool, dry_run: bool, output_format: str, state: Path,
             verbose: bool, context: _RunContext) -> int:
    """The plan as a local Spark Declarative Pipeline. The run (its id, its start) exists before the
    pipeline process starts, so the records carry the run's real start and end."""
    from pipelines.core.seam import replay
    from pipelines.ldp.sdp import SdpRun, dry_run_summary, summary

    from . import sdp_driver

    plan = project.plan
    consumers = None if dry_run else _consumers(project, state, context, state / "sdp")
    run = RunResult("sdp", run_id=consumers.run_id if consumers else context.run_id or new_run_id())
    sdp = SdpRun(plan, plan.config.path, state, Path(sdp_driver.__file__), full_refresh=full_refresh,
                 verbose=verbose, rules_file=_published_rules_file(project, state), run_id=run.run_id)
    click.echo(f"Starting Spark Declarative Pipelines for {len(plan.tables)} table(s) "
               f"({plan.mode} mode, state in {sdp.root})...", err=True)
    _warn_interrupted_refreshes(plan, sdp.root)
    raw = sdp.execute(dry_run=dry_run, echo=lambda line: click.echo(line, err=True))
    if raw.get("completed") is False:  # the process died: say why here too, not only in the summary
        click.echo(f"error: {raw['errors'][0]}", err=True)
    if consumers is None:
        return _report(dry_run_summary(raw), output_format)
    return _finish(replay(plan, summary(plan, raw, run), consumers, sdp.reader()), consumers, output_format)


def _warn_interrupted_refreshes(plan: Any, catalog: Path) -> None:
    """A refresh killed between its TRUNCATE and its WRITE left a table empty; its rows are one
    version back. This run recomputes it; `restore` brings them back at once (read from the log)."""
    from pipelines.catalog.reader import stored_table

    for table in plan.tables:
        stored = stored_table(catalog, plan.pipeline.schema_name, table.name)
        version = stored.interrupted_refresh() if stored is not None and stored.is_delta else None
        if version is not None:
            click.echo(f"warning: {table.name} was left empty by an interrupted refresh; this run recomputes "
                       f"it (its previous rows: ldp_engine restore {table.name} --version {version})", err=True)


def _published_rules_file(project: Any, state: Path) -> Path | None:
    """The published checks the SDP driver must enforce: exactly the versions read by this process."""
    if not project.published:
        return None
    from pipelines.core.rules import to_json

    rules_file = state / "sdp" / "published_rules.json"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    rules_file.write_text(to_json(dict(project.published)), encoding="utf-8")
    return rules_file


def _run_pipeline_update(project: Any, pipeline_id: str, full_refresh: bool, output_format: str,
                         state: Path, context: _RunContext) -> int:
    from databricks.sdk import WorkspaceClient

    from pipelines.core.seam import replay
    from pipelines.ldp.update import PipelineUpdate

    plan = project.plan
    update = PipelineUpdate(WorkspaceClient(), pipeline_id, echo=lambda line: click.echo(line, err=True))
    update_id = update.start(plan, full_refresh)
    final_state = update.follow(update_id)
    consumers = _consumers(project, state, context, write_sinks=False)  # the job's sinks task writes them
    run = update.summary(plan, update_id, final_state)
    if any(t.config.sinks for t in plan.tables):
        run.details["sinks"] = "not written by --runner pipeline: ldp_engine sinks publish (the job's sinks task)"
    return _finish(replay(plan, run, consumers, update.reader(plan)), consumers, output_format)


def _run_plan(project: Any, output_format: str, max_parallel: int, fail_fast: bool,
              table_timeout: float | None, state: Path, verbose: bool, context: _RunContext) -> int:
    from pipelines.catalog.session import get_spark
    from pipelines.catalog.storage import TableStore
    from pipelines.runners.spark import SparkRunner

    plan = project.plan
    click.echo(f"Starting Spark for {len(plan.tables)} table(s) ({plan.mode} mode)...", err=True)
    spark = get_spark(state, app_name=plan.pipeline.name, verbose=verbose)
    store = TableStore(spark, plan.pipeline, state)
    consumers = _consumers(project, state, context)
    runner = SparkRunner(spark, plan, project.functions, store, max_parallel=max_parallel,
                         fail_fast=fail_fast, on_event=_progress, table_timeout=table_timeout,
                         consumers=consumers)
    code = _finish(runner.run(), consumers, output_format)
    if runner.abandoned:  # a transformation stuck in Python cannot be stopped: end the process
        click.get_current_context().meta[HARD_EXIT] = True
    return code


def _progress(kind: str, result: Any) -> None:
    stamp = time.strftime("%H:%M:%S")
    if kind == "started":
        text = f"{result.name} [{result.layer}] started"
    elif kind == "finished":
        text = f"{result.name} finished: {result.rows_written} rows in {result.seconds:.1f}s"
    elif kind == "failed":
        text = f"{result.name} FAILED after {result.seconds:.1f}s: {result.error}"
    else:
        text = f"{result.name} skipped: {result.error}"
    click.echo(f"[{stamp}] {text}", err=True)


@cli.command()
@params.config
@params.output_format
@params.verbose
@handle_errors
def validate(config: str | None, output_format: str, verbose: bool) -> int:
    """Check config.yml, the dependency graph and every transformation module (warning about code that
    works only on the Spark runner)."""
    from .project import load_project

    project = load_project(config_path(config), check_all_modules=True, log_warnings=False)
    count, warnings = len(project.config.tables), [w.render() for w in project.warnings]
    if output_format == "json":
        click.echo(json.dumps({"status": "valid", "tables": count, "config": str(project.config.path),
                               "warnings": warnings}))
    else:
        click.echo(f"OK: {project.config.path} is valid ({count} tables)")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    return EXIT_OK


@cli.command()
@params.config
@params.selection
@params.format_option("mermaid", "dot")
@params.verbose
@handle_errors
def graph(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
          output_format: str, verbose: bool) -> int:
    """Print the dependency graph (layers as subgraphs, tags shown), or the part a selection runs."""
    from pipelines.core.config import load_config
    from .render import dot, mermaid

    loaded = _selected(load_config(config_path(config)), selection(tags, match, select_, exclude))
    click.echo(mermaid(loaded) if output_format == "mermaid" else dot(loaded))
    return EXIT_OK


def _selected(loaded: Any, chosen: Any) -> Any:
    """The config reduced to the selected tables and the edges between them, so `graph --tags x`
    draws what `--tags x` would run (unknown names and an empty selection fail as a run's do)."""
    from pipelines.core.graph import dependency_graph, select_tables

    if chosen.is_everything:
        return loaded
    names = select_tables(loaded, dependency_graph(loaded)[0], chosen)
    return loaded.with_tables(tuple(
        t.model_copy(update={"depends_on": tuple(d for d in t.depends_on if d in names)})
        for t in loaded.tables if t.name in names))


@cli.command()
@click.argument("name")
@params.config
@click.option("--where", help="A SQL condition on the rows, e.g. \"column_name = 'amount'\".")
@click.option("--columns", help="Comma-separated columns to show (default: all).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Rows to show.")
@click.option("--version", "version", type=click.IntRange(min=0),
              help="Show this version of the table (see `ldp_engine history NAME`).")
@click.option("--as-of", "as_of", help="Show the version current at this time, UTC: "
              "'YYYY-MM-DD HH:MM:SS' or ISO 8601.")
@params.output_format
@params.state_dir
@params.wait
@params.verbose
@handle_errors
def show(name: str, config: str | None, where: str | None, columns: str | None, limit: int,
         version: int | None, as_of: str | None, output_format: str, state_dir: str | None, wait: float,
         verbose: bool) -> int:
    """Print a local table as the most recent run left it, whichever runner wrote it (that run is named
    on stderr): a table of the pipeline (NAME), its quarantine table, or any SCHEMA.TABLE."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.core.config import load_config

    from .render import rows_text
    from .show import Request, describe_run, show_table, time_travel

    loaded = load_config(config_path(config))
    state = resolve_state(state_dir)
    request = Request(name, where, split_names(columns), limit, verbose, time_travel(version, as_of))
    with state_lock(state, wait):
        shown = show_table(loaded, state, request)
    click.echo(describe_run(shown), err=True)
    if output_format == "json":
        click.echo(json.dumps(shown.to_dict(), default=str))
    else:
        click.echo(rows_text(shown.columns, shown.rows))
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`ldp_engine`)."""
    cli.main(args=argv, prog_name="ldp_engine")


def _register_subcommands() -> None:
    """Command groups kept in their own modules (they import this one's options)."""
    from .history_cli import history, restore
    from .lakebase_cli import lakebase, runs
    from .monitors_cli import monitors
    from .report_cli import report
    from .rules_cli import rules
    from .sinks_cli import sinks

    cli.add_command(monitors)
    cli.add_command(lakebase)
    cli.add_command(runs)
    cli.add_command(rules)
    cli.add_command(sinks)
    cli.add_command(report)
    cli.add_command(history)
    cli.add_command(restore)


_register_subcommands()
