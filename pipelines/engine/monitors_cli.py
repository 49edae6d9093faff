"""`ldp_engine monitors plan | apply | coverage`: the config's monitors on Databricks data profiling.

`validate` already checks every monitor and the policy; these commands talk to the workspace (auth from
the environment, as the Databricks CLI's), print what they do, and never delete a monitor.
"""
from __future__ import annotations

import json
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME, Problem, UsageError

from .options import config_path, config_option, format_option, handle_errors, verbose_option

catalog_option = click.option("--catalog", help="Unity Catalog catalog of the tables [default: pipeline.catalog].")


def workspace_client() -> Any:
    """The workspace the commands talk to (tests replace this with an autospec'd client)."""
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def _provisioner(config: str | None, catalog: str | None) -> Any:
    from pipelines.core.config import load_config
    from pipelines.monitors.provision import Provisioner

    loaded = load_config(config_path(config))
    catalog = catalog or loaded.pipeline.catalog
    if not catalog:
        raise UsageError(Problem("monitors live in Unity Catalog: pass --catalog or set pipeline.catalog",
                                 file=str(loaded.path), key="pipeline.catalog"))
    return Provisioner(workspace_client(), loaded, catalog)


@click.group()
def monitors() -> None:
    """Provision the config's profiling monitors on Databricks and check their coverage."""


def _show_plan(changes: list[Any], output_format: str, **extra: Any) -> None:
    if output_format == "json":
        click.echo(json.dumps({"changes": [c.to_dict() for c in changes], **extra}))
        return
    for change in changes:
        fields = f" ({', '.join(change.fields)})" if change.fields else ""
        click.echo(f"{change.action:<9} {change.table}{fields}")
    if not changes:
        click.echo("no table of this pipeline declares a monitor")


@monitors.command("plan")
@config_option
@catalog_option
@format_option("text", "json")
@verbose_option
@handle_errors
def plan(config: str | None, catalog: str | None, output_format: str, verbose: bool) -> int:
    """What `apply` would create or update, field by field."""
    _show_plan(_provisioner(config, catalog).plan(), output_format)
    return EXIT_OK


@monitors.command("apply")
@config_option
@catalog_option
@click.option("--yes", is_flag=True, help="Apply the plan (without it, print the plan and apply nothing).")
@click.option("--refresh", is_flag=True, help="Start a refresh of every created or updated monitor.")
@format_option("text", "json")
@verbose_option
@handle_errors
def apply(config: str | None, catalog: str | None, yes: bool, refresh: bool, output_format: str,
          verbose: bool) -> int:
    """Create or update the declared monitors (never deletes one)."""
    provisioner = _provisioner(config, catalog)
    changes = provisioner.plan()
    if not yes:
        _show_plan(changes, output_format, applied=False)
        raise UsageError("nothing applied: review the plan above, then pass --yes")
    provisioner.apply(changes, refresh=refresh)
    _show_plan(changes, output_format, applied=True)
    if output_format == "text":
        click.echo(f"applied {sum(c.action != 'unchanged' for c in changes)} change(s)", err=True)
    return EXIT_OK


@monitors.command("coverage")
@config_option
@catalog_option
@format_option("text", "json")
@verbose_option
@handle_errors
def coverage(config: str | None, catalog: str | None, output_format: str, verbose: bool) -> int:
    """Monitored, unmonitored, stale and orphaned: exit 3 unless coverage is complete."""
    found = _provisioner(config, catalog).coverage()
    if output_format == "json":
        click.echo(json.dumps({"complete": found.complete, **found.to_dict()}))
    else:
        click.echo(f"monitored: {len(found.monitored)}")
        for title, items in (("unmonitored", found.unmonitored), ("orphaned metric tables", found.orphans)):
            click.echo(f"{title}: {len(items)}" + "".join(f"\n  {item}" for item in items))
        for title, reasons in (("stale", found.stale), ("errors", found.errors)):
            click.echo(f"{title}: {len(reasons)}" + "".join(f"\n  {t}: {why}" for t, why in reasons.items()))
    return EXIT_OK if found.complete else EXIT_RUNTIME
