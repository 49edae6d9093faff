"""`ldp_engine lakebase status | query` and `ldp_engine runs list | show`: the engine's PostgreSQL (never a
secret shown) and the run inventory kept there."""
from __future__ import annotations

import json
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, Problem, RunError, UsageError

from . import params
from .options import handle_errors, read_config


@click.group()
def lakebase() -> None:
    """The Lakebase (PostgreSQL) that sinks write to."""


@lakebase.command("status")
@params.config
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def status(config: str | None, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """Say where connections go and check that one can be made (exit 3 if not)."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.lakebase.connection import Lakebase

    loaded = read_config(config)
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


@lakebase.command("serve")
@params.config
@params.state_dir
@params.verbose
@handle_errors
def serve(config: str | None, state_dir: str | None, verbose: bool) -> int:
    """Keep the Lakebase reachable for psql and other clients until Ctrl-C (the embedded server
    otherwise runs only while a command does)."""
    import signal
    import threading

    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.lakebase.connection import Lakebase, without_secrets

    loaded = read_config(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Lakebase(loaded.lakebase, resolve_state(state_dir)) as server:
        with server.connect() as conn:
            conn.execute("SELECT 1")
        click.echo(f"{server.describe()}\nconnect with: psql \"{without_secrets(server.conninfo())}\"\n"
                   "Ctrl-C stops it.", err=False)
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
    click.echo("stopped", err=True)
    return EXIT_OK


@lakebase.command("query")
@click.argument("statement")
@params.config
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def query(statement: str, config: str | None, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """Run one SQL statement on the Lakebase and print its rows, e.g. the sinks' tables."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.lakebase.connection import Lakebase

    from .render import rows_text

    loaded = read_config(config)
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


@click.group()
def runs() -> None:
    """The run inventory (`lakebase.inventory: true`): what ran, when, and how it ended."""


def _inventory(config: str | None, state_dir: str | None) -> tuple[Any, Any]:
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.lakebase.connection import Lakebase

    loaded = read_config(config)
    return Lakebase(loaded.lakebase, resolve_state(state_dir)), loaded.lakebase.meta_schema


@runs.command("list")
@params.config
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest runs to show.")
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def list_runs(config: str | None, limit: int, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """The newest runs, newest first."""
    from pipelines.lakebase.inventory import recent_runs

    from .render import rows_text

    server, meta = _inventory(config, state_dir)
    with server:
        found = _read(lambda: recent_runs(server.connect, meta, limit))
    columns = ["run_id", "pipeline", "runner", "mode", "status", "started_at", "finished_at", "tables"]
    click.echo(json.dumps({"runs": found}, default=str) if output_format == "json" else rows_text(columns, found))
    return EXIT_OK


@runs.command("show")
@click.argument("run_id")
@params.config
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def show_run(run_id: str, config: str | None, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """One run: its tables, failed checks, sink writes and fired alerts."""
    from pipelines.lakebase.inventory import one_run

    from .render import rows_text

    server, meta = _inventory(config, state_dir)
    with server:
        found = _read(lambda: one_run(server.connect, meta, run_id))
    if found is None:
        raise UsageError(Problem("no such run in the inventory", value=run_id, hint="see: ldp_engine runs list"))
    if output_format == "json":
        click.echo(json.dumps(found, default=str))
        return EXIT_OK
    parts = {k: found.pop(k) for k in ("table_runs", "check_results", "sink_runs", "alerts")}
    click.echo("\n".join(f"{k}: {v}" for k, v in found.items()))
    for title, rows in parts.items():
        if rows:
            click.echo(f"\n{title}:\n" + rows_text([c for c in rows[0] if c != "run_id"], rows))
    return EXIT_OK


def _read(query: Any) -> Any:
    import psycopg

    try:
        return query()
    except psycopg.errors.UndefinedTable:
        raise UsageError(Problem("no run inventory yet", hint="set lakebase.inventory: true and run the pipeline")) \
            from None
