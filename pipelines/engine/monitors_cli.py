"""`ldp_engine monitors validate | plan | apply | coverage`: the config's monitors on Databricks data
profiling, for the selected tables (the run's selection options).

`validate` is offline unless `--check-workspace`; the others talk to the workspace (auth from the
environment, as the Databricks CLI's). Nothing is deleted unless `apply --delete-orphans` says so.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME, ConfigError, Problem, UsageError

from . import params
from .options import handle_errors, read_config, selection


def workspace_client() -> Any:
    """The workspace the commands talk to (tests replace this with an autospec'd client)."""
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


target_options = params.stack(params.config, params.selection, params.target)
"""The config, the selection, and where the tables are."""


def selected_tables(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
                    select_: str | None, exclude: str | None) -> tuple[Any, list[Any]]:
    """The validated config (policy included) and the selected tables; no Spark, no module import."""
    from pipelines.core.plan import build_plan

    from .project import with_target

    loaded = with_target(read_config(config), catalog, schema)
    plan = build_plan(loaded, selection(tags, match, select_, exclude))
    return loaded, [t.config for t in plan.tables]


def _provisioner(loaded: Any, tables: list[Any]) -> Any:
    from pipelines.monitors.provision import Provisioner

    if not loaded.pipeline.catalog:
        raise UsageError(Problem("monitors live in Unity Catalog: pass --catalog or set pipeline.catalog",
                                 file=str(loaded.path), key="pipeline.catalog"))
    return Provisioner(workspace_client(), loaded, loaded.pipeline.catalog, tables)


def _alerts(loaded: Any, tables: list[Any], warehouse_id: str | None) -> Any:
    from pipelines.monitors.sql_alerts import AlertProvisioner

    return AlertProvisioner(workspace_client(), loaded, loaded.pipeline.catalog, tables, warehouse_id)


warehouse = click.option("--warehouse-id", envvar="DATABRICKS_WAREHOUSE_ID", default=None,
                         help="SQL warehouse of the monitor groups' Databricks SQL alerts and views "
                              "[env DATABRICKS_WAREHOUSE_ID].")


@click.group()
def monitors() -> None:
    """Validate, provision and check the config's profiling monitors on Databricks."""


@monitors.command("validate")
@target_options
@click.option("--check-workspace", is_flag=True, help="Also check that each table and the columns its "
              "monitor names exist in the workspace.")
@params.output_format
@params.verbose
@handle_errors
def validate(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
             select_: str | None, exclude: str | None, check_workspace: bool, output_format: str,
             verbose: bool) -> int:
    """Every selected monitor and the monitoring policy (exit 1 naming each problem)."""
    loaded, tables = selected_tables(config, catalog, schema, tags, match, select_, exclude)
    if check_workspace:
        problems = _provisioner(loaded, tables).check_workspace()
        if problems:
            raise ConfigError([Problem(p.message, file=str(loaded.path), table=p.table, key=p.key, value=p.value,
                                       hint=p.hint) for p in problems])
    monitored = [t.name for t in tables if t.monitor is not None]
    if output_format == "json":
        click.echo(json.dumps({"status": "valid", "monitors": monitored}))
    else:
        click.echo(f"OK: {len(monitored)} monitor(s) valid" + (f": {', '.join(monitored)}" if monitored else ""))
    return EXIT_OK


def _show(changes: list[Any], output_format: str, alerts: Sequence[Any] = (), **extra: Any) -> None:
    if output_format == "json":
        click.echo(json.dumps({"changes": [c.to_dict() for c in changes],
                               "alerts": [c.to_dict() for c in alerts], **extra}))
        return
    for change in changes:
        fields = f" ({', '.join(change.fields)})" if change.fields else ""
        click.echo(f"{change.action:<9} {change.table}{fields}")
    if not changes:
        click.echo("no selected table declares or has a monitor")
    for change in alerts:
        fields = f" ({', '.join(change.fields)})" if change.fields else ""
        what = f"view {change.table}.{change.name}" if change.statement else f"alert {change.name}"
        click.echo(f"{change.action:<9} {what}{fields}")


@monitors.command("plan")
@target_options
@warehouse
@params.output_format
@params.verbose
@handle_errors
def plan(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
         select_: str | None, exclude: str | None, warehouse_id: str | None, output_format: str,
         verbose: bool) -> int:
    """What `apply` would do per table: create, update (field diff), unchanged, orphan, no-table; then
    per Databricks SQL alert (create, update, unchanged, orphan) and group view (replace)."""
    selected = selected_tables(config, catalog, schema, tags, match, select_, exclude)
    changes = _provisioner(*selected).plan()
    _show(changes, output_format, _alerts(*selected, warehouse_id).plan())
    return EXIT_OK


@monitors.command("apply")
@target_options
@click.option("--confirm", is_flag=True, help="Apply the plan (without it: print the plan, change nothing, exit 2).")
@click.option("--refresh", is_flag=True, help="Start a refresh of every selected monitor.")
@click.option("--delete-orphans", is_flag=True, help="Delete monitors (and engine-made Databricks SQL alerts) "
              "of selected tables that no longer declare them.")
@warehouse
@params.output_format
@params.verbose
@handle_errors
def apply(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
          select_: str | None, exclude: str | None, confirm: bool, refresh: bool, delete_orphans: bool,
          warehouse_id: str | None, output_format: str, verbose: bool) -> int:
    """Create and update the declared monitors, then their Databricks SQL alerts and group views; exit 3
    if a monitored table does not exist yet."""
    selected = selected_tables(config, catalog, schema, tags, match, select_, exclude)
    provisioner, alerting = _provisioner(*selected), _alerts(*selected, warehouse_id)
    changes, alert_changes = provisioner.plan(), alerting.plan()
    if not confirm:
        _show(changes, output_format, alert_changes, applied=False)
        raise UsageError("nothing applied: review the plan, then pass --confirm")
    provisioner.apply(changes, refresh=refresh, delete_orphans=delete_orphans)
    alerting.apply(alert_changes, delete_orphans=delete_orphans)
    _show(changes, output_format, alert_changes, applied=True)
    waiting = [c.table for c in changes if c.action == "no-table"]
    if waiting:
        click.echo(f"error: not monitored yet, the table does not exist: {', '.join(waiting)}", err=True)
        return EXIT_RUNTIME
    return EXIT_OK


@monitors.command("coverage")
@target_options
@params.output_format
@params.verbose
@handle_errors
def coverage(config: str | None, catalog: str | None, schema: str | None, tags: str | None, match: str,
             select_: str | None, exclude: str | None, output_format: str, verbose: bool) -> int:
    """Monitored, unmonitored, stale and orphaned: exit 3 unless coverage is complete."""
    found = _provisioner(*selected_tables(config, catalog, schema, tags, match, select_, exclude)).coverage()
    if output_format == "json":
        click.echo(json.dumps({"complete": found.complete, **found.to_dict()}))
    else:
        click.echo(f"monitored: {len(found.monitored)}")
        for title, items in (("unmonitored", found.unmonitored), ("orphaned metric tables", found.orphans)):
            click.echo(f"{title}: {len(items)}" + "".join(f"\n  {item}" for item in items))
        for title, reasons in (("stale", found.stale), ("errors", found.errors)):
            click.echo(f"{title}: {len(reasons)}" + "".join(f"\n  {t}: {why}" for t, why in reasons.items()))
    return EXIT_OK if found.complete else EXIT_RUNTIME


@monitors.command("dashboard")
@params.config
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the dashboard here (e.g. dashboards/monitors.lvdash.json) instead of to stdout.")
@params.verbose
@handle_errors
def dashboard(config: str | None, output: str | None, verbose: bool) -> int:
    """A Lakeview dashboard over every monitored table's profile and drift metrics (row volume, null
    rates and column statistics, drift per column), generated from the config: rerun it after adding
    a monitor. The bundle's `resources/dashboards.yml` deploys the file."""
    from pathlib import Path

    from pipelines.monitors.dashboard import monitor_dashboard

    text = json.dumps(monitor_dashboard(read_config(config)), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    return EXIT_OK
