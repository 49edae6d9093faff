"""`ldp_engine --runner sdp`: the project as an open-source Spark Declarative Pipeline, run locally.

Writes `spark-pipeline.yml` (storage, schema, configuration) and the entry source under
`{state}/sdp/`, then runs our driver (`sdp_driver.py`: the planned tables, one level per dataflow
graph) with Spark's pipelines launcher (Spark Connect server on a free 127.0.0.1 port of its own, so
runs of several projects may overlap; its own persistent Hive catalog under `{state}/sdp/`, so reruns
find their tables and checkpoints). The entry source stays beside the spec for `spark-pipelines run`
by hand; the run result has the Spark runner's shape.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from pipelines.core.errors import Problem, RunError
from pipelines.core.plan import Plan
from pipelines.core.variables import as_conf
from pipelines.core.results import CheckResult, RunResult, TableResult, events_applied
from pipelines.core.vocabulary import Criticality, OnError, TableStatus
from pipelines.catalog.session import LOOPBACK, SHORT_LIVED_JVM, get_spark, local_conf
from pipelines.catalog.storage import RUN_ID_CONF
from pipelines.quality.contract import new_columns
from pipelines.quality.enforce import quarantine_config

from .flow_counts import flow_counts
from .sdp_levels import CONNECT_PORT, PROGRESS_PREFIX
from .sdp_process import HELD, PORT_ENV, bind_failed, describe_failure, forced_port, free_port
from .registrar import table_datasets

log = logging.getLogger(__name__)
ENTRY_SOURCE = Path(__file__).resolve().parent.parent / "ldp_pipeline.py"
LAUNCHER = "org.apache.spark.deploy.SparkPipelines"
OUTPUT_LINES = 2000  # of the process's output, kept to find why it died
CONNECT_MODE_ENV = "SPARK_CONNECT_MODE_ENABLED"  # pyspark.sql.utils.is_remote(): Connect columns
TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # the token pyspark's local Connect server requires


@dataclass(frozen=True)
class SdpRun:
    plan: Plan
    config_path: Path
    state: Path  # the project's state folder; SDP keeps its own catalog in state/sdp
    driver: Path  # the script the launcher runs (pipelines/engine/sdp_driver.py)
    full_refresh: bool = False
    verbose: bool = False
    rules_file: Path | None = None  # the published checks the driver must enforce (rules_source: lakebase)
    run_id: str | None = None  # the run's id, known before it starts (in the spec: `ldp.run_id`)
    _held: list["HeldServer"] = field(default_factory=list, init=False, compare=False, repr=False)  # see execute(hold)
    # the run's Spark Connect server takes only clients that show it (the driver and our consumers)
    _token: str = field(default_factory=lambda: secrets.token_hex(16), init=False, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.state / "sdp"

    def spec(self) -> dict[str, Any]:
        selection = self.plan.selection
        return {
            "name": self.plan.pipeline.name,
            "storage": (self.root / "storage").as_uri(),
            "database": self.plan.pipeline.schema_name,
            "configuration": {
                "ldp.config": str(self.config_path.resolve()),
                "ldp.mode": self.plan.mode,
                "ldp.tags": ",".join(selection.tags),
                "ldp.match": selection.match,
                "ldp.schema": self.plan.pipeline.schema_name,
                **({"ldp.rules_file": str(self.rules_file)} if self.rules_file else {}),
                **as_conf(self.plan.config.variables),  # as this run resolved them, --var included
                # the run id also names each Delta commit of the run (`ldp_engine history`)
                **({"ldp.run_id": self.run_id, RUN_ID_CONF: self.run_id} if self.run_id else {}),
            },
            "libraries": [{"glob": {"include": f"definitions/{ENTRY_SOURCE.name}"}}],
        }

    def write(self) -> Path:
        """The spec and entry source; regenerated each run so they follow config.yml."""
        (self.root / "definitions").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ENTRY_SOURCE, self.root / "definitions" / ENTRY_SOURCE.name)
        spec = self.root / "spark-pipeline.yml"
        spec.write_text(yaml.safe_dump(self.spec(), sort_keys=False), encoding="utf-8")
        return spec

    def command(self, dry_run: bool, result: Path, port: int) -> list[str]:
        import pyspark

        spark_home = Path(pyspark.__file__).resolve().parent
        confs = {**local_conf(self.root, self.verbose, self.plan.local_packages),
                 "spark.connect.grpc.binding.address": LOOPBACK, CONNECT_PORT: str(port)}
        args = [str(spark_home / "bin" / "spark-class"), LAUNCHER, str(self.driver.resolve())]
        for key, value in confs.items():
            args += ["--conf", f"{key}={value}"]
        args += ["dry-run" if dry_run else "run", "--spec", str(self.write()), "--result", str(result),
                 "--tables", ",".join(self.plan.order)]
        return args + (["--full-refresh"] if self.full_refresh else [])

    def environment(self) -> dict[str, str]:
        import pyspark

        env = dict(os.environ)
        env.update(SPARK_HOME=str(Path(pyspark.__file__).resolve().parent), SPARK_LOCAL_IP=LOOPBACK,
                   PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
        # every JVM of the run is short-lived: spark-class takes no driver options for the launcher's own
        env["JDK_JAVA_OPTIONS"] = " ".join(filter(None, [env.get("JDK_JAVA_OPTIONS"), SHORT_LIVED_JVM]))
        env[TOKEN_ENV] = self._token
        return env

    def readers(self) -> tuple[Callable[[str], Any], Callable[[str, int | None], Any]]:
        """`read(name)` and `read_after(name, version)` for after-table consumers: the stored table in
        this pipeline's catalog (or the rows it gained after a version), through the held run's own
        server (`execute(hold=True)`), else one local session on `{state}/sdp`; started on the first
        read only (most consumers never read)."""
        from pipelines.catalog.appended import rows_after
        from pipelines.catalog.reader import stored_table

        session: list[Any] = []
        starting = threading.Lock()  # consumers read from several threads: one session starts

        def table(name: str) -> tuple[Any, str]:
            with starting:
                if not session:
                    session.append(self._held[0].session() if self._held else
                                   get_spark(self.root, app_name=f"{self.plan.pipeline.name}-consumers",
                                             packages=self.plan.local_packages, short_lived=True))
            fqn = f"`{self.plan.pipeline.schema_name}`.`{name}`"
            return session[0], fqn

        def read(name: str) -> Any:
            spark, fqn = table(name)
            return spark.table(fqn)

        def read_after(name: str, after: int | None) -> Any:
            spark, fqn = table(name)
            return rows_after(stored_table(self.root, self.plan.pipeline.schema_name, name), after,
                              lambda: spark.table(fqn))

        return read, read_after

    def execute(self, dry_run: bool = False, echo: Callable[[str], None] = log.info,
                hold: bool = False) -> dict[str, Any]:
        """Run the pipeline; return the driver's raw result (status, datasets, rows). A process that
        ends without a result gives `{"status": "failed", "completed": False, "errors": [its cause]}`;
        if its free port was taken before its server bound it (another run), it is retried once.
        With `hold`, the process keeps its server up after its result, for `readers()`, until
        `release()`."""
        self.root.mkdir(parents=True, exist_ok=True)
        forced = forced_port()
        for attempt in (1, 2):
            port = forced or free_port()
            code, output, raw = self._attempt(dry_run, port, echo, hold)
            if raw is not None:
                return raw
            if forced or attempt == 2 or not bind_failed(output):
                break
            echo(f"Spark Connect port {port} was taken before the server bound it: retrying on another")
        cause = describe_failure(code, output)
        if forced and bind_failed(output):
            cause += f" ({PORT_ENV}={forced} is taken: unset it, and each run takes a free port)"
        return {"status": "failed", "completed": False, "errors": [cause]}

    def release(self) -> None:
        """Let a held process stop its server and end (after the consumers read)."""
        while self._held:
            self._held.pop().release()

    def _attempt(self, dry_run: bool, port: int, echo: Callable[[str], None], hold: bool
                 ) -> tuple[int, list[str], dict[str, Any] | None]:
        """One launch: its exit code (0 while it is held), its last output lines, and its result (None
        if it wrote none)."""
        result = self.root / "last-result.json"
        result.unlink(missing_ok=True)
        command = self.command(dry_run, result, port)
        release = self.root / "release"
        if hold:
            release.unlink(missing_ok=True)
            command += ["--hold-until", str(release), "--parent", str(os.getpid())]
        log.debug("Spark Connect of the SDP run on %s:%d", LOOPBACK, port)
        process = subprocess.Popen(command, env=self.environment(), cwd=self.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = ProcessOutput(process, self.verbose, echo)
        output.held.wait()
        held = output.holding and result.is_file()
        if held:
            self._held.append(HeldServer(process, output, port, self._token, release))
        code = 0 if held else output.finish()
        raw = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else None
        return code, output.lines(), raw


class ProcessOutput:
    """The SDP process's output, read on a thread of its own to its end (a held process still
    writes): progress lines echoed (every line with verbose), the last OUTPUT_LINES kept to find why it
    died. `held` is set when it says it holds its server, or at the end of its output."""

    def __init__(self, process: subprocess.Popen, verbose: bool, echo: Callable[[str], None]):
        self.process, self.verbose, self.echo = process, verbose, echo
        self.kept: deque[str] = deque(maxlen=OUTPUT_LINES)
        self.held = threading.Event()
        self.holding = False  # it said so: its server is up until released
        self.thread = threading.Thread(target=self._read, name="ldp-sdp-output", daemon=True)
        self.thread.start()

    def lines(self) -> list[str]:
        return list(self.kept)

    def finish(self) -> int:
        """The process's exit code, once it and its output ended."""
        code = self.process.wait()
        self.thread.join()
        return code

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                line = line.rstrip("\n")
                if line == HELD:
                    self.holding = True
                    self.held.set()
                    continue
                self.kept.append(line)
                if self.verbose:
                    self.echo(line)
                elif line.startswith(PROGRESS_PREFIX):
                    self.echo(line[len(PROGRESS_PREFIX):])
        finally:
            self.held.set()


@dataclass
class HeldServer:
    """A finished run's process, holding its Spark Connect server for the CLI's consumers."""

    process: subprocess.Popen
    output: ProcessOutput
    port: int
    token: str
    release_file: Path
    sessions: list[Any] = field(default_factory=list)

    def session(self) -> Any:
        """A Spark Connect session of its own on the run's server (its catalog, its settings). Until
        the release, pyspark's functions build Connect columns in this process, as on serverless."""
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        os.environ[CONNECT_MODE_ENV] = "1"
        # `localhost`: pyspark sends a token over a plain local channel only to that host name
        spark = ConnectSession.builder.remote(f"sc://localhost:{self.port}/;token={self.token}").create()
        self.sessions.append(spark)
        return spark

    def release(self) -> None:
        for spark in self.sessions:
            try:
                spark.stop()
            except Exception:  # noqa: BLE001 - the server stops anyway
                log.debug("closing a consumer session failed", exc_info=True)
        if self.sessions:
            os.environ.pop(CONNECT_MODE_ENV, None)
        self.release_file.touch()
        self.output.finish()
        self.release_file.unlink(missing_ok=True)


def reads_over_connect(plan: Plan) -> bool:
    """Whether the run's consumers can work through its own server (`execute(hold=True)`): every sink
    of the run can be written over Spark Connect, and this process runs no classic Spark (pyspark's
    functions build either classic or Connect columns, process-wide)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is None and all(
        sink.writes_over_connect for table in plan.tables for sink in table.config.sinks)


def declared_checks(plan: Plan) -> dict[str, list[tuple[str, Criticality]]]:
    """{table: [(check name, criticality)]} of the named checks (unnamed ones get DQX's name, which
    only a Spark session can derive; their failures still show in the tables' `_errors`)."""
    from pipelines.quality.checks import named_checks

    return {t.name: named_checks(plan.config, t.config) for t in plan.tables if t.config.has_expectations}


def summary(plan: Plan, raw: dict[str, Any], run: RunResult | None = None, catalog: Path | None = None
            ) -> RunResult:
    """The run result of an SDP run (`run`: the one made before it started, which holds its id and
    start; `catalog`: the run's folder, `SdpRun.root`, where each append flow's rows are read from the
    stored tables' logs): one entry per planned table. Only a table that succeeded in this run has
    counts, read from the stored tables after the run (on_error: drop removed its rows: error checks
    are null); a failed or skipped table has none, since what it stores is an older run's. A streaming
    table counts the rows this run appended (`rows_written`) and all it holds (`rows_total`). A table
    holding fewer rows than its query gives from the stored inputs has failed, whatever its flow
    reported: its rows were lost after (or while) it was written."""
    if raw.get("status") == "error":
        raise RunError([Problem(text) for text in raw.get("errors", [])])
    run = run if run is not None else RunResult("sdp")
    run.errors.extend(raw.get("errors", []))
    check_specs = declared_checks(plan)
    for table in plan.tables:
        result = _table_result(table, raw, check_specs.get(table.name, []))
        if result.succeeded and catalog is not None and run.run_id:
            result.flows = flow_counts(catalog, plan.pipeline.schema_name, table, run.run_id)
        run.tables.append(result)
    if raw.get("status") != "success" and not run.errors:
        run.errors.append("the pipeline run did not complete")
    run.finished_at = time.time()
    return run


def _table_result(table: Any, raw: dict[str, Any], specs: list[tuple[str, Criticality]]) -> TableResult:
    names = table_datasets(table)
    flows = [raw.get("datasets", {}).get(name, {}) for name in names]
    status = _table_status([flow.get("status") for flow in flows], raw.get("status") == "success")
    error = next((flow["error"] for flow in flows if flow.get("error")), None)
    rows, expected = raw.get("rows", {}), raw.get("expected", {})
    if status is TableStatus.SUCCESS:
        lost = [f"{name} holds {rows.get(name) or 0} row(s), fewer than the {expected[name]} its query "
                "gives from the stored inputs" for name in names
                if name in expected and (rows.get(name) or 0) < expected[name]]
        if lost:
            status, error = TableStatus.FAILED, "; ".join(lost) + " (rows were lost after or while it was written)"
    if status is not TableStatus.SUCCESS and not error:
        error = "not run" if raw.get("completed", True) else \
            "not run: the Spark Declarative Pipelines process ended without a result"
    result = TableResult(table.name, table.layer, status, rows_written=None, rows_quarantined=None,
                         rows_dropped=None, checks=None, seconds=flows[0].get("seconds", 0.0), error=error)
    result.landed = raw.get("landed", {}).get(table.name, {})
    if status is TableStatus.SUCCESS:
        _count(result, table.config, raw, specs)
    return result


def _count(result: TableResult, config: Any, raw: dict[str, Any], specs: list[tuple[str, Criticality]]) -> None:
    """A succeeded table's counts: what it holds after the run less what it held before (only a
    streaming table has a "before": it appends), and its checks' failures the same way."""
    rows, before = raw.get("rows", {}), raw.get("rows_before", {})
    quarantine = quarantine_config(config).name

    def added(name: str) -> int:
        return (rows.get(name) or 0) - (before.get(name) or 0)

    result.rows_written, result.rows_total = added(config.name), rows.get(config.name) or 0
    changes = raw.get("changes", {}).get(config.name)
    if changes is not None:  # a CDC table applied by the engine: it wrote the events it applied
        result.changes = changes
        result.rows_written = events_applied(changes)
    result.rows_quarantined, result.rows_dropped = added(quarantine), 0
    result.checks = _checks(config, specs, raw.get("failures", {}), raw.get("failures_before", {}))
    result.new_columns = new_columns(config, raw.get("columns", {}).get(config.name, []))


def _table_status(flow_statuses: list[str | None], run_succeeded: bool) -> TableStatus:
    """A table succeeded when all its datasets did; a failure of any of them fails it."""
    if "failed" in flow_statuses:
        return TableStatus.FAILED
    if flow_statuses and all(status == "success" for status in flow_statuses):
        return TableStatus.SUCCESS
    return TableStatus.SKIPPED if "skipped" in flow_statuses or not run_succeeded else TableStatus.SUCCESS


def _checks(config: Any, specs: list[tuple[str, Criticality]], failures: dict[str, dict[str, int]],
            before: dict[str, dict[str, int]]) -> list[CheckResult]:
    """Rows each check failed in this run: stored in the table (warnings) and its quarantine (errors),
    less what they held before the run (streaming tables)."""
    names = [config.name, quarantine_config(config).name]

    def failed(check: str) -> int:
        return sum(failures.get(name, {}).get(check, 0) - before.get(name, {}).get(check, 0) for name in names)

    return [CheckResult(name, Criticality(criticality),
                        None if config.on_error is OnError.DROP and criticality == Criticality.ERROR
                        else failed(name)) for name, criticality in specs]


def dry_run_summary(raw: dict[str, Any]) -> RunResult:
    """valid when every flow resolved and ran on empty inputs; else invalid, with each flow's error."""
    if raw.get("status") == "error":
        raise RunError([Problem(text) for text in raw.get("errors", [])])
    failed = [f"{name}: {flow.get('error') or flow['status']}" for name, flow in raw.get("datasets", {}).items()
              if flow["status"] != "success"]
    errors = [*raw.get("errors", []), *failed]
    if raw.get("status") != "success" and not errors:
        errors.append("the dry run did not complete")
    return RunResult("sdp", errors=errors, dry_run=True)
