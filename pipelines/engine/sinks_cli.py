"""`ldp_engine sinks publish`: the selected tables' sinks written from their stored tables,
outside a run. A Databricks pipeline update (`--runner pipeline`) writes no sinks; the bundle job's
`sinks` task runs this after it, so a sink's outage (e.g. Lakebase's) is retried without recomputing any table.

Locally it reads what the most recent run wrote, whichever runner wrote it (the SDP runner keeps its own
catalog under `{state}/sdp`), as `show` does, and says which run that was."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME

from . import params
from .options import handle_errors, read_config, selection
from .show import catalog_root, last_run
from .state_lock import state_lock


@click.group()
def sinks() -> None:
    """Sinks outside a run (after a Databricks pipeline update)."""


@sinks.command("publish")
@params.config
@params.selection
@params.target
@params.run_id
@params.state_dir
@params.output_format
@params.wait
@params.mode
@params.verbose
@handle_errors
def publish(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
            catalog: str | None, schema: str | None, run_id: str | None, state_dir: str | None,
            output_format: str, wait: float, mode: str, verbose: bool) -> int:
    """Write the selected tables' sinks from the stored tables; exit 3 if a table or a sink fails.

    `--mode` is the mode the tables were written in (not given: the local run's that wrote them): a
    streaming table's sinks take only its new rows, and a Databricks pipeline delivers those it has a
    Lakeflow sink for itself (`delivered_in_pipeline`)."""
    from pipelines.catalog.session import get_spark, on_databricks, state_dir as resolve_state
    from pipelines.catalog.storage import TableStore
    from pipelines.consumers.inventory import RunInventory
    from pipelines.catalog.sinks import SinkRun
    from pipelines.consumers.sinks import TableSinks
    from pipelines.core.plan import build_plan
    from pipelines.core.results import RunResult, TableResult, TableStatus, new_run_id
    from pipelines.core.seam import Consumers, replay
    from pipelines.lakebase.connection import Lakebase

    from .embedded_kafka import embedded_kafka
    from .project import load_project
    from .render import summary_text

    project = load_project(read_config(config), selection(tags, match, select_, exclude), catalog=catalog,
                           schema=schema, published=lambda loaded: {})  # checks play no part here
    plan = project.plan
    targets = [t for t in plan.tables if t.config.sinks]
    state = resolve_state(state_dir)
    run = RunResult(runner="sinks")
    source, catalog, elsewhere = source_run(state, [t.name for t in targets])
    with state_lock(state, wait), Lakebase(plan.config.lakebase, state) as lakebase:
        if targets:
            store = TableStore(get_spark(catalog, app_name=f"{plan.pipeline.name}-sinks", verbose=verbose,
                                         packages=plan.local_packages), plan.pipeline, catalog)
            for table in targets:
                found = table.name not in elsewhere and store.exists(table.name)
                run.tables.append(TableResult(
                    table.name, table.layer, TableStatus.SUCCESS if found else TableStatus.FAILED, rows_written=None,
                    rows_quarantined=None, rows_dropped=None, checks=None,
                    error=None if found else elsewhere.get(table.name)
                    or f"table {store.fqn(table.name)} does not exist: run the pipeline first"))
        run_id = run_id or new_run_id()
        consumers = [TableSinks(SinkRun(run_id, lakebase, plan.config.base_dir, project.sink_functions, state),
                                skip_pipeline_delivered=on_databricks())]  # the job's task, after the update
        if plan.config.lakebase.inventory and targets:
            consumers.append(RunInventory(lakebase, plan, sinks_only=True))  # type: ignore[arg-type]
        # as the tables were written: a streaming table's sinks take only the rows they have not had
        given = click.get_current_context().get_parameter_source("mode") is not ParameterSource.DEFAULT
        written_in = mode if given else (source or {}).get("mode") or mode
        as_run = build_plan(plan.config, plan.selection, written_in)  # type: ignore[arg-type]
        with embedded_kafka(plan, state, lambda line: click.echo(line, err=True), sinks_only=True):
            replay(as_run, run, Consumers(consumers, run_id=run_id), lambda name: store.read(name),
                   lambda name, after: store.read_after(name, after))
    if targets:
        click.echo(describe_source(source), err=True)
    click.echo(json.dumps({**run.to_dict(), "source_run": source}) if output_format == "json" else
               summary_text(run) if targets else "no selected table has sinks")
    return EXIT_OK if run.succeeded else EXIT_RUNTIME


def source_run(state: Path, tables: list[str]) -> tuple[dict[str, Any] | None, Path, dict[str, str]]:
    """The most recent local run that wrote any of `tables` (None: no run record), the catalog it wrote to,
    and, for each table whose own latest run wrote another catalog, why it is not read from this one."""
    records = {name: last_run(state / "runs", name) for name in tables}
    newest = max((r for r in records.values() if r is not None), key=lambda r: r.get("finished_at") or 0,
                 default=None)
    catalog = catalog_root(state, newest)
    elsewhere = {name: f"table {name} was last written by run {r.get('run_id')} ({_runner(r)} runner, catalog "
                       f"{catalog_root(state, r)}), not by run {newest and newest.get('run_id')}: publish it "
                       f"on its own (--select {name})"
                 for name, r in records.items() if r is not None and catalog_root(state, r) != catalog}
    return _describe(newest, catalog), catalog, elsewhere


def _runner(record: dict[str, Any]) -> str:
    return str(record.get("summary", {}).get("runner", "spark"))


def _describe(record: dict[str, Any] | None, catalog: Path) -> dict[str, Any] | None:
    if record is None:
        return None
    finished = record.get("finished_at")
    return {"run_id": record.get("run_id"), "runner": _runner(record), "mode": record.get("mode"),
            "catalog": str(catalog),
            "finished_at": None if finished is None else datetime.fromtimestamp(finished, timezone.utc)
            .strftime("%Y-%m-%d %H:%M:%S UTC")}


def describe_source(source: dict[str, Any] | None) -> str:
    """One line for stderr: which run's tables are published."""
    if source is None:
        return "no run record: tables read from the state folder"
    return (f"tables as written by run {source['run_id']} ({source['runner']} runner, finished "
            f"{source['finished_at']})")
