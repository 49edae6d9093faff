"""`ldp_engine lakebase status`: where the engine's PostgreSQL is (never a secret) and whether it answers."""
from __future__ import annotations

import json

import click

from pipelines.core.errors import EXIT_OK, Problem, RunError, UsageError

from .options import config_option, config_path, format_option, handle_errors, verbose_option


@click.group()
def lakebase() -> None:
    """The Lakebase (PostgreSQL) that sinks write to."""


@lakebase.command("status")
@config_option
@click.option("--state-dir", type=click.Path(file_okay=False), help="Local state folder (see run).")
@format_option("text", "json")
@verbose_option
@handle_errors
def status(config: str | None, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """Say where connections go and check that one can be made (exit 3 if not)."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.core.config import load_config
    from pipelines.lakebase.connection import Lakebase

    loaded = load_config(config_path(config))
    with Lakebase(loaded.lakebase, resolve_state(state_dir)) as server:
        where = server.describe()
        try:
            with server.connect() as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - reported as a run-time failure, without a secret
            raise RunError(Problem(f"cannot connect ({where}): {type(exc).__name__}: {str(exc).strip()}")) from None
    if output_format == "json":
        click.echo(json.dumps({"status": "ok", "connection": where, "server_version": version}))
    else:
        click.echo(f"{where}\nOK: PostgreSQL {version}")
    return EXIT_OK


@lakebase.command("query")
@click.argument("statement")
@config_option
@click.option("--state-dir", type=click.Path(file_okay=False), help="Local state folder (see run).")
@format_option("text", "json")
@verbose_option
@handle_errors
def query(statement: str, config: str | None, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """Run one SQL statement on the Lakebase and print its rows, e.g. the sinks' tables."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.core.config import load_config
    from pipelines.lakebase.connection import Lakebase

    from .render import rows_text

    loaded = load_config(config_path(config))
    with Lakebase(loaded.lakebase, resolve_state(state_dir)) as server, server.connect() as conn:
        try:
            cursor = conn.execute(statement)
        except Exception as exc:  # noqa: BLE001 - the database's message, as a usage error
            raise UsageError(Problem(f"the statement failed: {str(exc).strip()}")) from None
        columns = [d.name for d in cursor.description or []]
        found = [dict(zip(columns, row)) for row in cursor.fetchall()] if columns else []
    if output_format == "json":
        click.echo(json.dumps({"columns": columns, "rows": found}, default=str))
    else:
        click.echo(rows_text(columns, found))
    return EXIT_OK
