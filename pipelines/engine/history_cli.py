"""`ldp_engine history TABLE` and `ldp_engine restore TABLE --version N`: a local table's Delta versions,
each with the run that wrote it, and a way back to one of them.

Both act on the catalog of the most recent run that wrote the table (as `show` does). `history` reads
the Delta log without a JVM; `restore` is Delta's RESTORE (a new version equal to the old one, so the
restore itself can be undone), holds the state lock, and is recorded as a run (`runner: restore`) in
the run records and, when one is kept, in the run inventory.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from pipelines.core.errors import ConfigError, Problem, UsageError

from . import params
from .options import handle_errors, read_config
from .state_lock import state_lock

EXIT_OK = 0
HISTORY_COLUMNS = ["version", "timestamp", "run_id", "operation", "rows"]


@click.command()
@click.argument("name")
@params.config
@params.output_format
@params.state_dir
@params.verbose
@handle_errors
def history(name: str, config: str | None, output_format: str, state_dir: str | None, verbose: bool) -> int:
    """Print a local table's versions, newest first: time (UTC), the run that wrote each, the operation
    and the rows it wrote."""
    from pipelines.catalog.session import state_dir as resolve_state

    from .render import rows_text

    full_name, commits, _ = _commits(read_config(config), resolve_state(state_dir), name)
    commits = [{key: commit[key] for key in HISTORY_COLUMNS} for commit in commits]
    if output_format == "json":
        click.echo(json.dumps({"table": full_name, "versions": commits}))
    else:
        click.echo(rows_text(HISTORY_COLUMNS, commits, width=48))
    return EXIT_OK


@click.command()
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=0), required=True,
              help="The version to bring back (see `ldp_engine history NAME`).")
@params.config
@params.output_format
@params.state_dir
@params.wait
@params.verbose
@handle_errors
def restore(name: str, version: int, config: str | None, output_format: str, state_dir: str | None,
            wait: float, verbose: bool) -> int:
    """Make VERSION of a local table its current version again (a new commit: `history` keeps both)."""
    from pipelines.catalog.session import state_dir as resolve_state

    loaded = read_config(config)
    state = resolve_state(state_dir)
    with state_lock(state, wait):
        full_name, commits, catalog = _commits(loaded, state, name)
        versions = sorted(c["version"] for c in commits)
        if version not in versions:
            from .show import version_ranges

            raise UsageError(Problem(f"{full_name} has no version {version}", key="--version", value=version,
                                     hint=f"versions: {version_ranges(versions)}"))
        run = _restore(loaded, state, catalog, full_name, version, verbose)
    summary = {"status": "success", "table": full_name, "restored_version": version, "run_id": run}
    click.echo(json.dumps(summary) if output_format == "json"
               else f"{full_name} restored to version {version} (run {run})")
    return EXIT_OK


def _commits(config: Any, state: Path, name: str) -> tuple[str, list[dict[str, Any]], Path]:
    """The table's full name, its commits (newest first) and the catalog folder it is in."""
    from .show import locate

    schema, table, _, catalog, stored = locate(config, state, name)
    full_name = f"{schema}.{table}"
    if stored is None:
        raise ConfigError(Problem(f"table {full_name} does not exist in {catalog}", value=name,
                                  hint="run the pipeline first, or name a table it writes"))
    if not stored.is_delta:
        raise UsageError(Problem(f"{full_name} is not a Delta table (format: set in config.yml): it keeps "
                                 "no versions", value=name))
    return full_name, stored.history(), catalog


def _restore(config: Any, state: Path, catalog: Path, full_name: str, version: int, verbose: bool) -> str:
    """RESTORE through a local session on `catalog`, tagged and recorded as a run; its run id."""
    from pipelines.catalog.session import get_spark
    from pipelines.catalog.storage import commits_tagged
    from pipelines.core.graph import Selection
    from pipelines.core.plan import build_plan
    from pipelines.core.results import RunResult, TableResult
    from pipelines.core.vocabulary import TableStatus

    schema, _, table = full_name.partition(".")
    run = RunResult("restore", [], run_id=f"restore-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    spark = get_spark(catalog, app_name=f"restore-{table}", verbose=verbose)
    with commits_tagged(spark, run.run_id):
        spark.sql(f"RESTORE TABLE `{schema}`.`{table}` TO VERSION AS OF {int(version)}")
    rows = spark.table(f"`{schema}`.`{table}`").count()
    owner = config.by_name.get(table)
    if owner is not None:  # a pipeline table: recorded like a run of it
        result = TableResult(table, owner.layer, status=TableStatus.SUCCESS, rows_written=rows, rows_total=rows)
        run.tables.append(result)
        run.details["restored_version"] = version
        run.finished_at = time.time()
        _record(config, build_plan(config, Selection(select=(table,))), state, run)
    return run.run_id


def _record(config: Any, plan: Any, state: Path, run: Any) -> None:
    """Into the run records, and the run inventory when config.yml keeps one."""
    from pipelines.consumers.run_record import RunRecord
    from pipelines.core.seam import Consumers
    from pipelines.lakebase.connection import Lakebase

    with Lakebase(config.lakebase, state) as lakebase:  # connects only if the inventory is used
        recorders: list[Any] = [RunRecord(state / "runs", plan)]
        if config.lakebase.inventory:
            from pipelines.consumers.inventory import RunInventory

            recorders.insert(0, RunInventory(lakebase, plan, {}))
        Consumers(recorders, run_id=run.run_id).run_finished(run)
