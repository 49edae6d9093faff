"""`ldp_engine sinks publish`: the selected tables' Lakebase sinks written from their stored tables,
outside a run. A Databricks pipeline update (`--runner pipeline`) writes no sinks; the bundle job's
`sinks` task runs this after it, so a Lakebase outage is retried without recomputing any table."""
from __future__ import annotations

import json

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME
from pipelines.core.results import RUN_ID_ENV

from .options import (config_option, config_path, format_option, handle_errors, selection, selection_options,
                      state_dir_option, verbose_option, wait_option)
from .state_lock import state_lock


@click.group()
def sinks() -> None:
    """Lakebase sinks outside a run (after a Databricks pipeline update)."""


@sinks.command("publish")
@config_option
@selection_options
@click.option("--catalog", help="Override pipeline.catalog (where the pipeline wrote its tables).")
@click.option("--schema", help="Override pipeline.schema.")
@click.option("--run-id", envvar=RUN_ID_ENV, help="The run these writes belong to (e.g. {{job.run_id}}, as the "
              "update's task): append sinks replace that run's rows, the inventory joins them to the run "
              "[env LDP_RUN_ID].")
@state_dir_option
@format_option("text", "json")
@wait_option
@verbose_option
@handle_errors
def publish(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
            catalog: str | None, schema: str | None, run_id: str | None, state_dir: str | None,
            output_format: str, wait: float, verbose: bool) -> int:
    """Write the selected tables' sinks from the stored tables; exit 3 if a table or a sink fails."""
    from pipelines.catalog.session import get_spark, state_dir as resolve_state
    from pipelines.catalog.storage import TableStore
    from pipelines.consumers.inventory import RunInventory
    from pipelines.consumers.lakebase_sinks import LakebaseSinks
    from pipelines.core.results import RunResult, TableResult, TableStatus, new_run_id
    from pipelines.core.seam import Consumers, replay
    from pipelines.lakebase.connection import Lakebase

    from .project import load_project
    from .render import summary_text

    project = load_project(config_path(config), selection(tags, match, select_, exclude), catalog=catalog,
                           schema=schema, published=lambda loaded: {})  # checks play no part here
    plan = project.plan
    targets = [t for t in plan.tables if t.config.sinks]
    state = resolve_state(state_dir)
    run = RunResult(runner="sinks")
    with state_lock(state, wait), Lakebase(plan.config.lakebase, state) as lakebase:
        if targets:
            store = TableStore(get_spark(state, app_name=f"{plan.pipeline.name}-sinks", verbose=verbose),
                               plan.pipeline, state)
            for table in targets:
                found = store.exists(table.name)
                run.tables.append(TableResult(
                    table.name, table.layer, TableStatus.SUCCESS if found else TableStatus.FAILED, rows_written=None,
                    rows_quarantined=None, rows_dropped=None, checks=None,
                    error=None if found else f"table {store.fqn(table.name)} does not exist: run the pipeline first"))
        run_id = run_id or new_run_id()
        consumers = [LakebaseSinks(lakebase, run_id)]
        if plan.config.lakebase.inventory and targets:
            consumers.append(RunInventory(lakebase, plan, sinks_only=True))  # type: ignore[arg-type]
        replay(plan, run, Consumers(consumers, run_id=run_id), lambda name: store.read(name))
    click.echo(json.dumps(run.to_dict()) if output_format == "json" else
               summary_text(run) if targets else "no selected table has sinks")
    return EXIT_OK if run.succeeded else EXIT_RUNTIME
