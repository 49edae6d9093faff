"""The Python side of a local Spark Declarative Pipelines run, started by Spark's own launcher
(`spark-class org.apache.spark.deploy.SparkPipelines`, as `spark-pipelines` does) with Spark Connect.

It does what `spark-pipelines run` does (load the spec, create the dataflow graph, import the entry
source, start the run and stream its events), plus three things the stock CLI cannot: it creates the
pipeline's schema first (the stock CLI fails on a missing one), it follows each flow's status, and
after the run it counts each table's rows through the same session, writing a JSON result file for
`ldp_engine --runner sdp`. Events go to stderr as they arrive.

    python sdp_driver.py run|dry-run --spec SPEC --result FILE [--refresh a,b] [--full-refresh a,b]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

if __name__ == "__main__":  # run as a script: its folder must not shadow top-level packages
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pipelines.engine.graph import split_names  # noqa: E402
from pipelines.ldp.flow_events import FLOW_STATUS, flow_in, state_in  # noqa: E402

PROGRESS_PREFIX = "[sdp] "
progress = logging.getLogger("ldp.sdp.progress")  # lines the runner always shows (prefixed)
log = logging.getLogger("ldp.sdp")  # details it shows with --verbose only (unprefixed)


def configure_logging() -> None:
    """Both loggers to stderr, which the runner reads; progress lines carry PROGRESS_PREFIX."""
    for logger, pattern in ((progress, PROGRESS_PREFIX + "%(message)s"), (log, "%(message)s")):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(pattern))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


@dataclass
class FlowTracker:
    """Per-dataset status and duration, from the run's event messages."""

    started: dict[str, datetime] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def update(self, message: str, at: datetime) -> None:
        name, state = flow_in(message), state_in(message)
        if name is None or state is None:
            return
        if state != "QUEUED":  # time from the start of work, not from waiting for upstream flows
            self.started.setdefault(name, at)
        if state in FLOW_STATUS and self.status.get(name) != "failed":
            self.status[name] = FLOW_STATUS[state]
            self.seconds[name] = round((at - self.started[name]).total_seconds(), 3)
            if state == "FAILED" and "Error:" in message:
                self.errors[name] = message.split("Error:", 1)[1].strip().splitlines()[0]
            elif state == "SKIPPED":
                self.errors[name] = "upstream table failed"


def follow(events: Iterable[dict[str, Any]], tracker: FlowTracker) -> None:
    for result in events:
        if "pipeline_event_result" not in result:
            continue
        event = result["pipeline_event_result"].event
        at = event.timestamp.ToDatetime().replace(tzinfo=timezone.utc)
        tracker.update(event.message, at)
        progress.info("%s %s", f"{at:%H:%M:%S}", event.message)


def count_rows(spark: Any, database: str, names: Iterable[str]) -> Iterator[tuple[str, int | None]]:
    for name in names:
        try:
            yield name, spark.read.table(f"`{database}`.`{name}`").count()
        except Exception:  # noqa: BLE001 - a table that was never written has no rows to report
            yield name, None


def merge_launcher_conf(environ: dict[str, str] | Any = os.environ) -> None:
    """Work around a PySpark 4.2 bug: the launcher hands `--conf` settings to the local Spark Connect
    server in chunks of 10 (PYSPARK_REMOTE_INIT_CONF_0..n), but the server start keeps only the last
    chunk, silently dropping the rest (the catalog location, the 127.0.0.1 binding...). Merging the
    chunks into one before the session starts keeps them all."""
    count = int(environ.get("PYSPARK_REMOTE_INIT_CONF_LEN", "0"))
    if count <= 1:
        return
    merged: dict[str, str] = {}
    for index in range(count):
        merged.update(json.loads(environ.pop(f"PYSPARK_REMOTE_INIT_CONF_{index}")))
    environ["PYSPARK_REMOTE_INIT_CONF_0"] = json.dumps(merged)
    environ["PYSPARK_REMOTE_INIT_CONF_LEN"] = "1"


def count_failures(spark: Any, database: str, names: Iterable[str]) -> dict[str, dict[str, int]]:
    """Rows each check failed, per dataset, from the stored `_errors`/`_warnings` of failing rows only."""
    from pyspark.sql import functions as F

    counts: dict[str, dict[str, int]] = {}
    for name in names:
        try:
            stored = spark.read.table(f"`{database}`.`{name}`")
            results = [F.coalesce(c, F.array()) for c in ("_errors", "_warnings") if c in stored.columns]
            failing = stored.where(" OR ".join(f"{c} IS NOT NULL" for c in ("_errors", "_warnings")
                                               if c in stored.columns))
            rows = (failing.select(F.explode(F.concat(*results)).alias("result"))
                    .groupBy(F.col("result.name").alias("check")).count().collect())
            counts[name] = {row["check"]: int(row["count"]) for row in rows}
        except Exception:  # noqa: BLE001 - a table that was never written has no failures to report
            continue
    return counts


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.pipelines.cli import load_pipeline_spec, register_definitions
    from pyspark.pipelines.spark_connect_graph_element_registry import SparkConnectGraphElementRegistry
    from pyspark.pipelines.spark_connect_pipeline import create_dataflow_graph, start_run
    from pyspark.sql import SparkSession

    spec_path = Path(args.spec).resolve()
    spec = load_pipeline_spec(spec_path)
    merge_launcher_conf()
    builder = SparkSession.builder.config("spark.sql.connect.serverStacktrace.enabled", "false")
    for key, value in spec.configuration.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    tracker = FlowTracker()
    result: dict[str, Any] = {"status": "success"}
    try:
        database = spec.database or "default"
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{database}`")
        graph_id = create_dataflow_graph(spark, default_catalog=spec.catalog, default_database=database,
                                         sql_conf=spec.configuration)
        registry = SparkConnectGraphElementRegistry(spark, graph_id)
        try:
            register_definitions(spec_path, registry, spec, spark, graph_id)
        except Exception as exc:  # noqa: BLE001 - the engine's own errors carry an exit code
            log.warning("registering the pipeline's definitions failed", exc_info=True)
            return {"status": "error", "exit_code": getattr(exc, "exit_code", 3),
                    "errors": [exc.render() if hasattr(exc, "render") else f"{type(exc).__name__}: {exc}"]}
        try:
            follow(start_run(spark, graph_id, full_refresh=args.full_refresh, full_refresh_all=False,
                             refresh=args.refresh, dry=args.command == "dry-run", storage=spec.storage),
                   tracker)
        except Exception as exc:  # noqa: BLE001 - the run failed; flows say which
            result = {"status": "failed", "errors": [str(exc).strip().splitlines()[0]]}
        result["datasets"] = {
            name: {"status": status, "seconds": tracker.seconds.get(name, 0.0),
                   "error": tracker.errors.get(name)} for name, status in tracker.status.items()}
        if args.command == "run":
            result["rows"] = dict(count_rows(spark, database, args.count))
            result["failures"] = count_failures(spark, database, args.checked)
        return result
    finally:
        spark.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sdp_driver")
    parser.add_argument("command", choices=["run", "dry-run"])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--refresh", default="")
    parser.add_argument("--full-refresh", default="")
    parser.add_argument("--count", default="", help="datasets whose rows to count after the run")
    parser.add_argument("--checked", default="", help="datasets whose check failures to count")
    args = parser.parse_args(argv)
    for key in ("refresh", "full_refresh", "count", "checked"):
        setattr(args, key, list(split_names(getattr(args, key))))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    configure_logging()
    result = run(args)
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
