"""`ldp_engine --runner sdp`: the project as an open-source Spark Declarative Pipeline, run locally.

Writes `spark-pipeline.yml` (storage, schema, configuration) and the entry source under
`{state}/sdp/`, then runs our driver (`sdp_driver.py`: the planned tables, one level per dataflow
graph) with Spark's pipelines launcher (Spark Connect server on 127.0.0.1, its own persistent Hive
catalog under `{state}/sdp/`, so reruns find their tables and checkpoints). The entry source stays
beside the spec for `spark-pipelines run` by hand; the run result has the Spark runner's shape.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from pipelines.core.errors import Problem, RunError
from pipelines.core.plan import Plan
from pipelines.core.results import CheckResult, RunResult, TableResult
from pipelines.core.vocabulary import Criticality, OnError, TableStatus
from pipelines.catalog.session import LOOPBACK, get_spark, local_conf
from pipelines.quality.enforce import quarantine_config

from .sdp_levels import PROGRESS_PREFIX
from .registrar import table_datasets

log = logging.getLogger(__name__)
ENTRY_SOURCE = Path(__file__).resolve().parent.parent / "ldp_pipeline.py"
LAUNCHER = "org.apache.spark.deploy.SparkPipelines"


@dataclass(frozen=True)
class SdpRun:
    plan: Plan
    config_path: Path
    state: Path  # the project's state folder; SDP keeps its own catalog in state/sdp
    driver: Path  # the script the launcher runs (pipelines/engine/sdp_driver.py)
    full_refresh: bool = False
    verbose: bool = False
    rules_file: Path | None = None  # the published checks the driver must enforce (rules_source: lakebase)

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

    def command(self, dry_run: bool, result: Path) -> list[str]:
        import pyspark

        spark_home = Path(pyspark.__file__).resolve().parent
        confs = {**local_conf(self.root, self.verbose), "spark.connect.grpc.binding.address": LOOPBACK}
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
        return env

    def reader(self) -> Callable[[str], Any]:
        """`read(name)` for after-table consumers: the stored table in this pipeline's catalog, through a
        local session on `{state}/sdp`, started on the first read only (most consumers never read)."""
        session: list[Any] = []

        def read(name: str) -> Any:
            if not session:
                session.append(get_spark(self.root, app_name=f"{self.plan.pipeline.name}-consumers"))
            return session[0].table(f"`{self.plan.pipeline.schema_name}`.`{name}`")

        return read

    def execute(self, dry_run: bool = False, echo: Callable[[str], None] = log.info) -> dict[str, Any]:
        """Run the pipeline; return the driver's raw result (status, datasets, rows)."""
        self.root.mkdir(parents=True, exist_ok=True)
        result = self.root / "last-result.json"
        result.unlink(missing_ok=True)
        process = subprocess.Popen(self.command(dry_run, result), env=self.environment(), cwd=self.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-40:]
            if self.verbose:
                echo(line)
            elif line.startswith(PROGRESS_PREFIX):
                echo(line[len(PROGRESS_PREFIX):])
        code = process.wait()
        if not result.is_file():
            raise RunError(Problem(f"the Spark Declarative Pipelines process exited with code {code} "
                                   "without a result", hint="last output:\n  " + "\n  ".join(tail[-15:])))
        return json.loads(result.read_text(encoding="utf-8"))


def declared_checks(plan: Plan) -> dict[str, list[tuple[str, str]]]:
    """{table: [(check name, criticality)]} of the named checks (unnamed ones get DQX's name, which
    only a Spark session can derive; their failures still show in the tables' `_errors`)."""
    from pipelines.quality.checks import table_checks

    return {t.name: [(c["name"], c.get("criticality", Criticality.ERROR.value)) for c in table_checks(plan.config, t.config)
                     if c.get("name")] for t in plan.tables if t.config.has_expectations}


def summary(plan: Plan, raw: dict[str, Any]) -> RunResult:
    """The run result of an SDP run: one entry per planned table, with row counts and per-check
    failures read from the stored tables (on_error: drop removed its rows: error checks are null).
    A table holding fewer rows than its query gives from the stored inputs has failed, whatever its
    flow reported: its rows were lost after (or while) it was written."""
    check_specs = declared_checks(plan)
    if raw.get("status") == "error":
        raise RunError([Problem(text) for text in raw.get("errors", [])])
    datasets, rows, expected = raw.get("datasets", {}), raw.get("rows", {}), raw.get("expected", {})
    run = RunResult("sdp", errors=list(raw.get("errors", [])))
    for table in plan.tables:
        names = table_datasets(table)
        flows = [datasets.get(name, {}) for name in names]
        status = _table_status([flow.get("status") for flow in flows], raw.get("status") == "success")
        error = next((flow["error"] for flow in flows if flow.get("error")), None)
        if status is TableStatus.SUCCESS:
            lost = [f"{name} holds {rows.get(name) or 0} row(s), fewer than the {expected[name]} its query "
                    "gives from the stored inputs" for name in names
                    if name in expected and (rows.get(name) or 0) < expected[name]]
            if lost:
                status, error = TableStatus.FAILED, "; ".join(lost) + " (rows were lost after or while it was written)"
        quarantine = quarantine_config(table.config).name
        run.tables.append(TableResult(
            table.name, table.layer, status, rows_written=rows.get(table.name) or 0,
            rows_quarantined=rows.get(quarantine) or 0, rows_dropped=0,
            checks=_checks(table.config, check_specs.get(table.name, []), raw.get("failures", {})),
            seconds=flows[0].get("seconds", 0.0),
            error=error or (None if status is TableStatus.SUCCESS else "not run")))
    if raw.get("status") != "success" and not run.errors:
        run.errors.append("the pipeline run did not complete")
    run.finished_at = time.time()
    return run


def _table_status(flow_statuses: list[str | None], run_succeeded: bool) -> TableStatus:
    """A table succeeded when all its datasets did; a failure of any of them fails it."""
    if "failed" in flow_statuses:
        return TableStatus.FAILED
    if flow_statuses and all(status == "success" for status in flow_statuses):
        return TableStatus.SUCCESS
    return TableStatus.SKIPPED if "skipped" in flow_statuses or not run_succeeded else TableStatus.SUCCESS


def _checks(config: Any, specs: list[tuple[str, str]], failures: dict[str, dict[str, int]]
            ) -> list[CheckResult]:
    stored = [failures.get(config.name, {}), failures.get(quarantine_config(config).name, {})]
    return [CheckResult(name, Criticality(criticality),
                        None if config.on_error is OnError.DROP and criticality == Criticality.ERROR
                        else sum(counts.get(name, 0) for counts in stored)) for name, criticality in specs]


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
