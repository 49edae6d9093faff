"""`ldp_engine plan`: what a run or a deploy of the selection would change in the tables that exist,
destructive steps first, without starting Spark.

`--target local` (default) reads the catalog the newest local run wrote (the Spark runner's, or the SDP
runner's own) from its Delta logs; a table an earlier local run wrote that config.yml no longer declares
is a `drop`. `--target databricks` lists the pipeline's schema in Unity Catalog through the SDK; a table
the pipeline (`--pipeline-id`) created that config.yml no longer declares is a `drop`. Checks, sinks
and monitors are compared with the last local run's record, or on Databricks with the digests the
registrar keeps in each table's `ldp_engine.declarations` property. A declared
contract (`columns:`) is compared with the stored columns. `--fail-on destructive` exits 4 when the
plan holds a drop or a breaking schema change, for CI before a deploy.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipelines.core.changes import TableChange, plan_changes
from pipelines.core.contracts import ContractMode
from pipelines.core.errors import EXIT_DESTRUCTIVE, EXIT_OK, Problem, UsageError

from . import params
from .options import handle_errors, read_config, selection


@click.command()
@params.config
@params.selection
@params.mode
@params.target
@click.option("--target", "where", type=click.Choice(["local", "databricks"]), default="local", show_default=True,
              help="Compare with the local catalog, or with the workspace's Unity Catalog (SDK auth).")
@params.pipeline_id
@params.output_format
@click.option("--fail-on", "fail_on", type=click.Choice(["destructive"]),
              help="Exit 4 when the plan drops a table or breaks a table's schema.")
@click.option("--schemas/--no-schemas", default=True, show_default=True,
              help="Resolve each table without a contract on empty inputs (starts local Spark) to compare "
                   "its columns with the stored ones.")
@params.state_dir
@params.verbose
@handle_errors
def plan(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
         mode: str, catalog: str | None, schema: str | None, where: str, pipeline_id: str | None, output_format: str,
         fail_on: str | None, schemas: bool, state_dir: str | None, verbose: bool) -> int:
    """Show what a run of the selected tables would change in the tables that exist: create, unchanged,
    schema change (additive or breaking, per column) and drop, destructive steps first."""
    from pipelines.core.plan import build_plan

    from .project import with_target

    loaded = with_target(read_config(config), catalog, schema)
    wanted = selection(tags, match, select_, exclude)
    planned = build_plan(loaded, wanted, mode)  # type: ignore[arg-type]
    names = list(planned.order)
    if where == "databricks":
        against, stored, written, previous = _in_workspace(loaded, pipeline_id)
    else:
        against, stored, written, previous = _in_local_catalog(loaded, state_dir)
    uncontracted = [n for n in names if n in stored and (
        not loaded.table(n).columns or loaded.table(n).contract is ContractMode.OFF)]
    resolved = _resolved(loaded, names, uncontracted, mode, stored, previous, state_dir, verbose) \
        if schemas and uncontracted else None
    changes = plan_changes(loaded, names, stored, written, resolved, previous,
                           streaming=[t.name for t in planned.tables if t.streaming])
    if output_format == "json":
        click.echo(json.dumps({"against": against, "changes": [c.to_dict() for c in changes]}))
    else:
        click.echo(changes_text(changes, against))
    destructive = any(c.action.destructive for c in changes)
    return EXIT_DESTRUCTIVE if fail_on == "destructive" and destructive else EXIT_OK


Stored = dict[str, dict[str, str] | None]


def local_changes(loaded: Any, names: list[str], state_dir: str | Path | None, catalog: Path | None = None
                  ) -> tuple[str, list[TableChange]]:
    """What a run of the tables `names` changes in `catalog` (default: the one the newest local run
    wrote; tables without a contract not resolved: no Spark), and that catalog."""
    against, stored, written, previous = _in_local_catalog(loaded, state_dir, catalog)
    return against, plan_changes(loaded, names, stored, written, previous=previous)


def _in_local_catalog(loaded: Any, state_dir: str | Path | None, catalog: Path | None = None
                      ) -> tuple[str, Stored, set[str], dict[str, Any]]:
    """The catalog (default: the one the newest local run wrote), its tables' columns, what local runs
    wrote there, and each table's declarations as the newest run that selected it recorded them. Read
    from the Delta logs and the run records, lock-free: a Delta table is read at one committed version."""
    from pipelines.catalog.reader import stored_tables
    from pipelines.catalog.session import state_dir as resolve_state

    from .show import catalog_root, local_run_records

    state = resolve_state(state_dir)
    records = local_run_records(state / "runs")
    newest = max(records, key=lambda r: r.get("finished_at") or 0, default=None)
    catalog = catalog or catalog_root(state, newest)
    stored = {name: table.columns() for name, table in stored_tables(catalog, loaded.pipeline.schema_name).items()}
    here = sorted((r for r in records if catalog_root(state, r) == catalog), key=lambda r: r.get("finished_at") or 0)
    written = {name for record in here for name in record.get("selection", ())}
    previous = {name: declared for record in here for name, declared in (record.get("declared") or {}).items()}
    return str(catalog), stored, written, previous


def _resolved(loaded: Any, names: list[str], uncontracted: list[str], mode: str, stored: Stored,
              previous: dict[str, Any], state_dir: str | None, verbose: bool) -> dict[str, Any]:
    """Each table without a contract's columns: as stored where its query's digest is the one its last
    successful run recorded (no Spark), else as its query resolves on empty inputs, on a scratch local
    session, with the selected tables upstream of it."""
    from pipelines.core.changes import query_digests, to_resolve
    from pipelines.core.graph import Selection

    resolving = to_resolve(loaded, names, uncontracted, query_digests(loaded, uncontracted, mode), previous)
    resolved: dict[str, Any] = {n: stored[n] for n in uncontracted if n not in resolving}
    if not resolving:
        return resolved
    from pipelines.catalog.session import scratch_spark, state_dir as resolve_state
    from pipelines.runners.resolve import resolve_columns

    from .project import load_project

    project = load_project(loaded, Selection(select=tuple(resolving)), mode)  # type: ignore[arg-type]
    spark = scratch_spark(resolve_state(state_dir), verbose, packages=project.plan.local_packages)
    return {**resolved, **resolve_columns(spark, project.plan, project.functions, stored)}


def _in_workspace(loaded: Any, pipeline_id: str | None) -> tuple[str, Stored, set[str], dict[str, Any]]:
    """The pipeline's schema in Unity Catalog, its tables' columns, the tables the pipeline owns, and
    each table's declarations as its last update registered them."""
    from pipelines.ldp.deployed import deployed_tables

    from .monitors_cli import workspace_client

    catalog, schema = loaded.pipeline.catalog, loaded.pipeline.schema_name
    if not catalog:
        raise UsageError(Problem("--target databricks needs a catalog", key="pipeline.catalog",
                                 hint="set pipeline.catalog in config.yml or pass --catalog"))
    deployed = deployed_tables(workspace_client(), catalog, schema, pipeline_id)
    if not pipeline_id:
        click.echo("warning: no --pipeline-id: tables the pipeline no longer declares are not looked for", err=True)
    return f"{catalog}.{schema}", dict(deployed.columns), set(deployed.owned), dict(deployed.declared)


def changes_text(changes: list[TableChange], against: str) -> str:
    lines = [f"plan against {against}:"]
    for change in changes:
        mark = "!" if change.action.destructive else "+" if change.action.value == "create" else " "
        lines.append(f" {mark} {change.table}: {change.action}")
        lines += [f"       {detail}" for detail in change.details]
    count = sum(c.action.destructive for c in changes)
    lines.append(f"{count} destructive change(s)" if count else "no destructive change")
    return "\n".join(lines)
