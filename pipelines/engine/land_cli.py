"""`ldp_engine land`: the selected tables' incremental database reads (a `jdbc` source with an
`incremental_column`) land the rows above their high-water mark in their landing tables, outside a run.

A Databricks pipeline's queries may not write, so the bundle job's `land` task runs this before the
pipeline update, whose streaming tables then read only the rows landed since their last update. The
local runners land by themselves; locally this lands into the Spark runner's catalog."""
from __future__ import annotations

import json

import click

from pipelines.core.errors import EXIT_OK, EXIT_RUNTIME, describe_error

from . import params
from .options import handle_errors, read_config, selection
from .state_lock import state_lock


@click.command()
@params.config
@params.selection
@params.target
@params.state_dir
@params.output_format
@params.wait
@params.verbose
@handle_errors
def land(config: str | None, tags: str | None, match: str, select_: str | None, exclude: str | None,
         catalog: str | None, schema: str | None, state_dir: str | None, output_format: str, wait: float,
         verbose: bool) -> int:
    """Land the new database rows of the selected tables' incremental reads; exit 3 if one fails (the
    others still land)."""
    from pipelines.catalog.landing import land as land_rows, landing_sources
    from pipelines.catalog.session import get_spark, state_dir as resolve_state
    from pipelines.catalog.storage import TableStore

    from .project import load_project

    project = load_project(read_config(config), selection(tags, match, select_, exclude), catalog=catalog,
                           schema=schema, published=lambda loaded: {})  # checks play no part here
    plan = project.plan
    sources = list(landing_sources(plan.tables))
    landed, errors = [], {}
    state = resolve_state(state_dir)
    with state_lock(state, wait):
        if sources:
            spark = get_spark(state, app_name=f"{plan.pipeline.name}-land", verbose=verbose,
                              packages=plan.local_packages)
            store = TableStore(spark, plan.pipeline, state)
            store.ensure_schema()
            for _, source in sources:
                try:
                    done = land_rows(spark, source, store.fqn, plan.config.base_dir)
                    landed.append({"table": source.name, "landing": done.landing, "since": done.since,
                                   "mark": done.mark, "rows": done.rows})
                except Exception as exc:  # noqa: BLE001 - reported on its table; the others still land
                    errors[source.name] = describe_error(exc)
    if output_format == "json":
        click.echo(json.dumps({"landed": landed, "errors": errors}, default=str))
    else:
        click.echo("\n".join([f"{r['table']}: landed {r['rows']} row(s) above {r['since']} into {r['landing']} "
                              f"(mark now {r['mark']})" for r in landed] + [f"{name}: FAILED: {error}" for name, error
                                                                   in errors.items()])
                   or "no selected table reads a database incrementally")
    return EXIT_RUNTIME if errors else EXIT_OK
