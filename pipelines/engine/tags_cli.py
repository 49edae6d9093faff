"""`ldp_engine tags plan | apply`: the Unity Catalog column tags config.yml's `columns:` declare, on
the selected tables (the run's selection options), after the pipeline update that created them.
Declared tags are created or updated; nothing is deleted (see `pipelines.ldp.column_tags`)."""
from __future__ import annotations

import json
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME, Problem, UsageError

from . import params
from . import monitors_cli
from .monitors_cli import selected_tables, target_options
from .options import handle_errors


@click.group()
def tags() -> None:
    """Assign the column tags config.yml declares in Unity Catalog."""


def _planned(config: str | None, catalog: str | None, schema: str | None, tags_: str | None, match: str,
             select_: str | None, exclude: str | None) -> tuple[Any, list[Any]]:
    from pipelines.ldp.column_tags import plan_tags

    loaded, tables = selected_tables(config, catalog, schema, tags_, match, select_, exclude)
    if not loaded.pipeline.catalog:
        raise UsageError(Problem("column tags live in Unity Catalog: pass --catalog or set pipeline.catalog",
                                 file=str(loaded.path), key="pipeline.catalog"))
    workspace = monitors_cli.workspace_client()
    return workspace, plan_tags(workspace, loaded, loaded.pipeline.catalog, tables)


def _show(changes: list[Any], output_format: str, applied: bool) -> None:
    if output_format == "json":
        click.echo(json.dumps({"applied": applied, "changes": [c.to_dict() for c in changes]}))
        return
    for c in changes:
        before = f" (was {c.before!r})" if c.action == "update" else ""
        click.echo(f"{c.action:<9} {c.column}: {c.key}={c.value!r}{before}")
    if not changes:
        click.echo("no selected column declares a tag")


@tags.command("plan")
@target_options
@params.output_format
@params.verbose
@handle_errors
def plan(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
         select_: str | None, exclude: str | None, output_format: str, verbose: bool) -> int:
    """Per declared column tag: create, update (with the value in Unity Catalog), unchanged, or
    no-column (the table has not been created yet)."""
    _, changes = _planned(config, catalog, schema, tags, match, select_, exclude)
    _show(changes, output_format, applied=False)
    return EXIT_OK


@tags.command("apply")
@target_options
@click.option("--confirm", is_flag=True, help="Apply the plan (without it: print the plan, change nothing, exit 2).")
@params.output_format
@params.verbose
@handle_errors
def apply(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
          select_: str | None, exclude: str | None, confirm: bool, output_format: str, verbose: bool) -> int:
    """Create and update the declared column tags; exit 3 if a tagged column does not exist yet."""
    from pipelines.ldp.column_tags import apply_tags

    workspace, changes = _planned(config, catalog, schema, tags, match, select_, exclude)
    if not confirm:
        _show(changes, output_format, applied=False)
        raise UsageError("nothing applied: review the plan, then pass --confirm")
    apply_tags(workspace, changes)
    _show(changes, output_format, applied=True)
    missing = sorted({c.column for c in changes if c.action == "no-column"})
    if missing:
        click.echo(f"error: not tagged yet, the column does not exist: {', '.join(missing)}", err=True)
        return EXIT_RUNTIME
    return EXIT_OK
