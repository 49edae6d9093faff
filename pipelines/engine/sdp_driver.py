"""The process `ldp_engine --runner sdp` starts through Spark's own launcher (`spark-class
org.apache.spark.deploy.SparkPipelines`, as `spark-pipelines` does): it loads the project's planned
tables, runs them level by level (`pipelines.ldp.sdp_levels`) and writes a JSON result file.

    python sdp_driver.py run|dry-run --spec SPEC --result FILE --tables a,b,c [--full-refresh]
        [--hold-until FILE --parent PID]

With `--hold-until`, once the result is written it says so (`HELD`, logged) and keeps its Spark
Connect server up until FILE exists or the process PID is gone: the CLI's after-table consumers read
the run's tables through it instead of starting a JVM of their own.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__":  # run as a script: its folder must not shadow top-level packages
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pipelines.catalog.landing import land, landing_sources  # noqa: E402
from pipelines.core.errors import describe_error  # noqa: E402
from pipelines.core.graph import Selection, split_names  # noqa: E402
from pipelines.core.config import load_config  # noqa: E402
from pipelines.core.contracts import ContractMode  # noqa: E402
from pipelines.core.plan import Plan  # noqa: E402
from pipelines.core.rules import from_json  # noqa: E402
from pipelines.core.variables import Overrides  # noqa: E402
from pipelines.engine.project import load_project  # noqa: E402
from pipelines.ldp.registrar import Registrar, pipeline_api, table_datasets  # noqa: E402
from pipelines.ldp.sdp_process import HELD  # noqa: E402
from pipelines.ldp.sdp_levels import (LevelRunner, configure_logging,  # noqa: E402
                                      connect_to_launcher_port, count_failures, count_rows, log,
                                      merge_launcher_conf)


def load_registrar(spark: Any, spec: Any, tables: list[str]) -> Any:
    """The Registrar of exactly the tables the CLI planned (same selection, so the same levels)."""
    settings = spec.configuration
    rules_file = settings.get("ldp.rules_file")
    published = {}
    if rules_file:  # the CLI read the active published rules: enforce those, not a later activation
        published = from_json(Path(rules_file).read_text(encoding="utf-8"))
    config = load_config(settings["ldp.config"], Overrides.from_conf(settings))  # the CLI's variables
    project = load_project(config, Selection(select=tuple(tables)),
                           settings.get("ldp.mode", "batch"), schema=settings.get("ldp.schema") or None,
                           published=lambda config: published)
    return Registrar(spark, project.plan, project.functions, pipeline_api())


def land_sources(spark: Any, plan: Plan, database: str, rows: bool) -> dict[str, dict[str, int]]:
    """Land the new rows of the planned tables' incremental database reads, before the pipeline's
    queries read them (a dry run only creates a missing landing table, empty). Returns per table the
    rows each of its reads landed."""
    landed: dict[str, dict[str, int]] = {}
    for table, config in landing_sources(plan.tables):
        done = land(spark, config, lambda name: f"`{database}`.`{name}`", plan.config.base_dir, rows=rows)
        landed.setdefault(table, {})[config.name] = done.rows
    return landed


def run(args: argparse.Namespace, deliver: Callable[[dict[str, Any]], None]) -> None:
    """The run; `deliver(result)` is called while its session (and server) is still up."""
    from pyspark.pipelines.cli import load_pipeline_spec

    spec = load_pipeline_spec(Path(args.spec).resolve())
    spark = session(spec)
    try:
        deliver(_result(spark, spec, args))
    finally:
        spark.stop()


def session(spec: Any) -> Any:
    """The Spark Connect session on the server the launcher's settings start (the spec's settings)."""
    from pyspark.sql import SparkSession

    merge_launcher_conf()
    connect_to_launcher_port()
    builder = SparkSession.builder.config("spark.sql.connect.serverStacktrace.enabled", "false")
    for key, value in spec.configuration.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _result(spark: Any, spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{spec.database or 'default'}`")
    try:
        registrar = load_registrar(spark, spec, args.tables)
        landed = land_sources(spark, registrar.plan, spec.database or "default", rows=args.command == "run")
        runner = LevelRunner(spark, spec, registrar, full_refresh=args.full_refresh,
                             database=spec.database or "default", storage=spec.storage)
        runner.probe()
    except Exception as exc:  # noqa: BLE001 - the engine's own errors carry an exit code
        log.warning("defining the pipeline's datasets failed", exc_info=True)
        return {"status": "error", "exit_code": getattr(exc, "exit_code", 3), "errors": [describe_error(exc)]}
    if args.command == "dry-run":
        runner.dry_run()
        return outcome(runner)
    before = {} if args.full_refresh else counts_before(spark, runner)
    after = CountsAfter(spark, runner)
    runner.run(level_done=after.count)
    return {**outcome(runner), **before, **after.result(), "landed": landed}


def deliver(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Write the result file; with `--hold-until`, then say so and wait for the release."""
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    if args.hold_until and args.parent and result.get("status") != "error":
        log.info(HELD)  # on stderr, the channel the runner reads (unprefixed: matched whole)
        release = Path(args.hold_until)
        while not release.exists() and _alive(args.parent):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def outcome(runner: Any) -> dict[str, Any]:
    """The run's status, errors and every dataset's status, duration and error."""
    tracker = runner.tracker
    result: dict[str, Any] = {"status": "failed" if runner.errors else "success"}
    if runner.errors:
        result["errors"] = runner.errors
    if runner.changes:
        result["changes"] = runner.changes
    result["datasets"] = {
        name: {"status": status, "seconds": tracker.seconds.get(name, 0.0),
               "error": tracker.errors.get(name)} for name, status in tracker.status.items()}
    return result


def counts_before(spark: Any, runner: Any) -> dict[str, Any]:
    """Rows and check failures the streaming tables hold before the run: it appends to them, and
    reports what it added (a materialized view is rewritten whole: what it holds after is what the
    run wrote). Tables not stored yet are left out (nothing before)."""
    tables = [t for t in runner.registrar.plan.tables if t.streaming]
    names = [name for t in tables for name in table_datasets(t)]
    checked = [name for t in tables if t.config.has_expectations for name in table_datasets(t)]
    rows = {name: count for name, count in count_rows(spark, runner.database, names) if count is not None}
    return {"rows_before": rows, "failures_before": count_failures(spark, runner.database, checked)}


class CountsAfter:
    """Rows and check failures of the tables that succeeded in this run only (a failed or skipped
    table still holds an older run's rows, which are not this run's), the rows each should hold, and an
    additive contract's columns. A level's tables are counted as soon as it finishes, before the next
    level is defined: counting (which reruns each table's query) beside the next level's definition
    made runs flaky (a flow's definition failing with a gRPC error, the server's JVM exiting with 50)."""

    def __init__(self, spark: Any, runner: Any):
        self.spark, self.runner = spark, runner
        self.merged: dict[str, Any] = {"rows": {}, "expected": {}, "failures": {}, "columns": {}}

    def count(self, tables: list[Any]) -> None:
        database = self.runner.database
        names = [name for table in tables for name in table_datasets(table)]
        checked = [name for table in tables if table.config.has_expectations for name in table_datasets(table)]
        self.merged["rows"].update(count_rows(self.spark, database, names))  # a few queries at a time
        self.merged["failures"].update(count_failures(self.spark, database, checked))
        for table in tables:
            self.merged["expected"].update(self.runner.expected(table))
            if table.config.columns and table.config.contract is ContractMode.ADDITIVE:
                self.merged["columns"][table.name] = self.spark.table(f"`{database}`.`{table.name}`").columns

    def result(self) -> dict[str, Any]:
        return self.merged


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sdp_driver")
    parser.add_argument("command", choices=["run", "dry-run"])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--tables", required=True, help="the planned tables, comma-separated")
    parser.add_argument("--full-refresh", action="store_true", help="reset and recompute every table")
    parser.add_argument("--hold-until", help="after the result, keep the server up until this file exists")
    parser.add_argument("--parent", type=int, help="the process holding it (with --hold-until): gone, it ends")
    args = parser.parse_args(argv)
    args.tables = list(split_names(args.tables))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    configure_logging()
    run(args, functools.partial(deliver, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
