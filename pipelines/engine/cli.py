"""The `ldp_engine` command line: run (the default command), validate, graph, show. Options are
declared once in `params`; a run is launched (runner chosen, consumers assembled) in `launch`.

Exit codes: 0 ok, 1 invalid config or validation failure, 2 usage error, 3 run-time failure,
4 `plan --fail-on destructive` found a destructive change.
User mistakes are printed as messages, never as tracebacks (unless --verbose).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME
from pipelines.core.graph import split_names
from pipelines.core.results import RunResult

from . import params
from .options import config_path, handle_errors, overrides, read_config, selection
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
        output_format: str, **options: Any) -> int:
    """Select, order and materialize tables (the default command)."""
    from .launch import RunOptions, launch

    launched = launch(RunOptions(config_path(config), selection(tags, match, select_, exclude),
                                 overrides=overrides(), **options))
    if launched.run is None:  # a dry run that only plans
        from .plan_cli import changes_text, local_changes
        from .render import plan_text

        against, changes = local_changes(launched.plan.config, list(launched.plan.order), options["state_dir"])
        if output_format == "json":
            click.echo(json.dumps({**launched.plan.to_dict(), "changes": [c.to_dict() for c in changes]}))
        else:
            click.echo(plan_text(launched.plan) + "\n" + changes_text(changes, against))
        return EXIT_OK
    code = _report(launched.run, output_format)
    for name, path in launched.outputs:
        click.echo(f"{name.replace('_', ' ')}: {path}", err=True)
    if launched.abandoned:  # a transformation stuck in Python cannot be stopped: end the process
        _Exit.without_finalizing = True
    return code


def _report(run: RunResult, output_format: str) -> int:
    from .render import summary_text

    click.echo(json.dumps(run.to_dict()) if output_format == "json" else summary_text(run))
    return EXIT_OK if run.succeeded else EXIT_RUNTIME


@cli.command()
@params.config
@params.output_format
@click.option("--show-config", is_flag=True, help="Print the config as resolved (variables filled in; secret "
              "references stay as written, never their values).")
@params.verbose
@handle_errors
def validate(config: str | None, output_format: str, show_config: bool, verbose: bool) -> int:
    """Check config.yml, the dependency graph and every transformation module (warning about code that
    works only on the Spark runner). Secrets are not read: they resolve when a run connects."""
    from .project import load_project

    project = load_project(read_config(config), check_all_modules=True, log_warnings=False)
    count, warnings = len(project.config.tables), [w.render() for w in project.warnings]
    shown = {"resolved": project.config.model_dump(mode="json", by_alias=True, exclude_defaults=True,
                                                   exclude={"path"})} if show_config else {}
    if output_format == "json":
        click.echo(json.dumps({"status": "valid", "tables": count, "config": str(project.config.path),
                               "warnings": warnings, **shown}))
    else:
        if shown:
            import yaml

            click.echo(yaml.safe_dump(shown["resolved"], sort_keys=False), nl=False)
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
    from .render import dot, mermaid

    loaded = _selected(read_config(config), selection(tags, match, select_, exclude))
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

    from .render import rows_text
    from .show import Request, describe_run, show_table, time_travel

    loaded = read_config(config)
    state = resolve_state(state_dir)
    request = Request(name, where, split_names(columns), limit, verbose, time_travel(version, as_of))
    with state_lock(state, wait):
        shown = show_table(loaded, state, request)
    click.echo(describe_run(shown), err=True)
    if output_format == "json":
        click.echo(json.dumps(shown.to_dict(), default=str))
    else:
        click.echo(rows_text(shown.columns, shown.rows))
    _Exit.without_finalizing = True  # the native readers' thread pools (delta-rs, Arrow): see `main`
    return EXIT_OK


class _Exit:
    """Set by a command whose process should end at once, without joining threads or finalizing native
    libraries (a transformation stuck in Python past --table-timeout; `show`'s native readers); read
    by `main` only, so in-process callers (tests, notebooks) are never cut short."""

    without_finalizing = False


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`ldp_engine`). After a run that abandoned a stuck table, the process
    ends at once (its thread cannot be stopped or joined). After `show` has printed everything and
    released the lock, too: the teardown of the files readers' native thread pools raced the
    interpreter's once in CI (complete output, then "terminate called without an active exception" and
    SIGABRT, exit -6, instead of 0)."""
    try:
        cli.main(args=argv, prog_name="ldp_engine")
    except SystemExit as done:
        if not _Exit.without_finalizing:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(done.code if isinstance(done.code, int) else 0 if done.code is None else 1)


def _register_subcommands() -> None:
    """Command groups kept in their own modules (they import this one's options)."""
    from .history_cli import history, restore
    from .land_cli import land
    from .lakebase_cli import lakebase, runs
    from .monitors_cli import monitors
    from .plan_cli import plan
    from .report_cli import report
    from .rules_cli import rules
    from .sinks_cli import sinks
    from .tags_cli import tags

    cli.add_command(land)
    cli.add_command(monitors)
    cli.add_command(plan)
    cli.add_command(lakebase)
    cli.add_command(runs)
    cli.add_command(rules)
    cli.add_command(sinks)
    cli.add_command(tags)
    cli.add_command(report)
    cli.add_command(history)
    cli.add_command(restore)


_register_subcommands()
