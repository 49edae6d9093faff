"""`ldp_engine rules`: propose checks from data (`generate`) and keep versioned checks in Lakebase
(`publish`, `history`, `activate`, `diff`), which `pipeline.rules_source: lakebase` enforces."""
from __future__ import annotations

import difflib
import json
from typing import Any, Callable, TypeVar

import click

from pipelines.core.config import Config, TableConfig
from pipelines.core.errors import EXIT_OK, ConfigError, Problem, RunError, UsageError, describe_error

from . import params
from .options import handle_errors, read_config
from .state_lock import state_lock

T = TypeVar("T")


@click.group()
def rules() -> None:
    """Data-quality rules (DQX checks): proposed from data, versioned in Lakebase."""


@rules.command("generate")
@params.config
@click.option("--table", "table_name", required=True, help="Table whose current data is profiled.")
@click.option("--criticality", type=click.Choice(["error", "warn"]), default="warn", show_default=True,
              help="Criticality of the proposed checks.")
@click.option("--write", "write_to", is_flag=True,
              help="Write the checks to the table's expectations_file (default: print them).")
@params.state_dir
@params.wait
@params.verbose
@handle_errors
def generate(config: str | None, table_name: str, criticality: str, write_to: bool,
             state_dir: str | None, wait: float, verbose: bool) -> int:
    """Profile a table's current data and propose DQX checks as YAML, for review."""
    from pipelines.quality.generate import propose_checks, to_yaml, write_checks_file

    from pipelines.catalog.session import get_spark, state_dir as resolve_state
    from pipelines.catalog.storage import TableStore

    loaded = _config(config)
    table = _table(loaded, table_name)
    if write_to and not table.expectations_file:
        raise ConfigError(Problem("--write needs the table to declare expectations_file", table=table_name,
                                  file=str(loaded.path), key="expectations_file"))
    from pipelines.quality.enforce import strip_quality_columns

    state = resolve_state(state_dir)
    with state_lock(state, wait):
        spark = get_spark(state, verbose=verbose)
        store = TableStore(spark, loaded.pipeline, state)
        if not store.exists(table_name):
            raise RunError(Problem(f"table {store.fqn(table_name)} does not exist yet; run it first",
                                   table=table_name))
        checks = propose_checks(spark, strip_quality_columns(store.read(table_name)), criticality)
    if write_to:
        target = (loaded.base_dir / str(table.expectations_file)).resolve()
        write_checks_file(target, checks, table_name)
        click.echo(f"wrote {len(checks)} proposed check(s) to {target}", err=True)
    else:
        click.echo(to_yaml(checks), nl=False)
    return EXIT_OK


table_option = click.option("--table", "table_name", help="The table (default: every table with checks).")
one_table = click.option("--table", "table_name", required=True, help="The table.")


@rules.command("publish")
@params.config
@table_option
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def publish(config: str | None, table_name: str | None, state_dir: str | None, output_format: str,
            verbose: bool) -> int:
    """Store each table's current checks as a new active version, only where they changed."""
    from pipelines.lakebase.rules import publish as publish_version
    from pipelines.quality.checks import table_checks, validate_expectations

    loaded = _config(config)
    tables = [_table(loaded, table_name)] if table_name else [t for t in loaded.tables if t.expectations or t.expectations_file]
    problems = validate_expectations(loaded, tables)
    if problems:  # nothing invalid is ever published
        raise ConfigError(problems)
    results = []
    with _RuleStore(loaded, state_dir) as (connect, meta):
        for table in tables:
            version, changed = _call(lambda: publish_version(connect, meta, table.name, table_checks(loaded, table),
                                                               {"source": str(loaded.path)}))
            results.append({"table": table.name, "version": version.version, "changed": changed,
                            "checks": len(version.rules)})
    if output_format == "json":
        click.echo(json.dumps({"tables": results}))
    for result in results if output_format == "text" else []:
        state = "published" if result["changed"] else "unchanged,"
        click.echo(f"{result['table']}: {state} version {result['version']} ({result['checks']} checks)")
    return EXIT_OK


@rules.command("history")
@params.config
@one_table
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def history(config: str | None, table_name: str, state_dir: str | None, output_format: str, verbose: bool) -> int:
    """Every published version of a table's checks, newest first (* = active)."""
    from pipelines.lakebase.rules import history as versions

    from .render import rows_text

    loaded = _config(config)
    with _RuleStore(loaded, state_dir) as (connect, meta):
        found = _call(lambda: versions(connect, meta, table_name))
    rows = [{"version": v.version, "active": "*" if v.is_active else "", "created_at": v.created_at,
             "created_by": v.created_by, "checks": len(v.rules), "fingerprint": v.fingerprint[:12]} for v in found]
    if output_format == "json":
        click.echo(json.dumps({"table": table_name, "versions": [
            {**row, "active": bool(row["active"]), "fingerprint": v.fingerprint, "rules": v.rules}
            for row, v in zip(rows, found)]}, default=str))
    elif rows:
        click.echo(rows_text(list(rows[0]), rows))
    else:
        click.echo(f"{table_name}: no published version (see: ldp_engine rules publish --table {table_name})")
    return EXIT_OK


@rules.command("activate")
@params.config
@one_table
@click.option("--version", "number", type=click.IntRange(min=1), required=True, help="The version to enforce.")
@params.state_dir
@params.verbose
@handle_errors
def activate(config: str | None, table_name: str, number: int, state_dir: str | None, verbose: bool) -> int:
    """Make one published version the table's active checks (roll back or forward, no redeploy)."""
    from pipelines.lakebase.rules import RulesError, activate as activate_version, version
    from pipelines.quality.checks import check_problems

    loaded = _config(config)
    _table(loaded, table_name)
    with _RuleStore(loaded, state_dir) as (connect, meta):
        target = _call(lambda: version(connect, meta, table_name, number))
        if target is not None:  # a version the engine would refuse is never made active
            problems = check_problems(target.rules, file=f"lakebase {meta}.dq_rules_events", table=table_name,
                                      key=f"version {number}")
            if problems:
                raise ConfigError(problems)
        before = _call(lambda: version(connect, meta, table_name))
        try:
            _call(lambda: activate_version(connect, meta, table_name, number))
        except RulesError as exc:
            raise UsageError(Problem(str(exc), hint=f"see: ldp_engine rules history --table {table_name}")) from None
    was = f" (was {before.version})" if before and before.version != number else ""
    click.echo(f"{table_name}: version {number} is active{was}")
    return EXIT_OK


@rules.command("diff")
@params.config
@one_table
@click.option("--version", "number", type=click.IntRange(min=1), help="Published version [default: the active one].")
@params.state_dir
@params.output_format
@params.verbose
@handle_errors
def diff(config: str | None, table_name: str, number: int | None, state_dir: str | None, output_format: str,
         verbose: bool) -> int:
    """What publishing the config's checks would change against a published version."""
    from pipelines.core.rules import diff_rules
    from pipelines.lakebase.rules import version
    from pipelines.quality.checks import table_checks

    loaded = _config(config)
    current = table_checks(loaded, _table(loaded, table_name))
    with _RuleStore(loaded, state_dir) as (connect, meta):
        published = _call(lambda: version(connect, meta, table_name, number))
    if published is None and number:
        raise UsageError(Problem(f"table '{table_name}' has no published version {number}",
                                 hint=f"see: ldp_engine rules history --table {table_name}"))
    old, label = (published.rules, f"version {published.version}") if published else ([], "nothing published")
    changes = diff_rules(old, current)
    if output_format == "json":
        click.echo(json.dumps({"table": table_name, "version": published.version if published else None,
                               "same": changes.same, **changes.to_dict()}))
        return EXIT_OK
    if changes.same:
        click.echo(f"{table_name}: config checks are the same as {label}")
        return EXIT_OK
    for sign, names in (("+", changes.added), ("-", changes.removed), ("~", changes.changed)):
        click.echo("".join(f"{sign} {name}\n" for name in names), nl=False)
    click.echo("".join(difflib.unified_diff(_canonical(old), _canonical(current), f"{table_name} {label}",
                                            f"{table_name} {loaded.path}")), nl=False)
    return EXIT_OK


def _canonical(checks: list[dict[str, Any]]) -> list[str]:
    """YAML lines with sorted keys: PostgreSQL's jsonb keeps its own key order, the config its author's."""
    import yaml

    return yaml.safe_dump(checks, sort_keys=True, allow_unicode=True).splitlines(True)


def _config(config: str | None) -> Config:

    return read_config(config)


def _table(loaded: Config, name: str) -> TableConfig:
    if name not in loaded.by_name:
        raise ConfigError(Problem("--table names an unknown table", file=str(loaded.path), value=name,
                                  hint=f"tables: {', '.join(t.name for t in loaded.tables)}"))
    return loaded.by_name[name]


class _RuleStore:
    """The configured Lakebase's connect function and rules schema, for one command."""

    def __init__(self, loaded: Config, state_dir: str | None):
        from pipelines.catalog.session import state_dir as resolve_state
        from pipelines.lakebase.connection import Lakebase

        self.server = Lakebase(loaded.lakebase, resolve_state(state_dir))
        self.meta = loaded.lakebase.meta_schema

    def __enter__(self) -> tuple[Callable[..., Any], str]:
        return self.server.connect, self.meta

    def __exit__(self, *exc: Any) -> None:
        self.server.close()


def _call(read: Callable[[], T]) -> T:
    """A store request; a database that cannot be reached is a run-time failure, said without a secret."""
    import psycopg

    try:
        return read()
    except (psycopg.Error, OSError) as exc:
        raise RunError(Problem(f"the rule store failed: {describe_error(exc)}",
                               hint="see: ldp_engine lakebase status")) from None
