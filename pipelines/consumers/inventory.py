"""The run inventory on the after-table seam: when a run ends, every table's outcome, failed checks,
sink writes and fired alerts go to Lakebase (`pipelines.lakebase.inventory`). If the inventory cannot
be written, the tables stay written, the summary says so (`"inventory"`), and the exit code is the
run's own.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pipelines.core.errors import describe_error
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Read
from pipelines.lakebase.connection import Lakebase
from pipelines.lakebase.inventory import record_run, record_sinks


class RunInventory:
    name = "inventory"

    def __init__(self, lakebase: Lakebase, plan: Plan, rules_versions: dict[str, int] | None = None,
                 sinks_only: bool = False):
        self.lakebase = lakebase
        self.plan = plan
        self.rules_versions = rules_versions or {}  # published rule versions the tables enforce
        self.sinks_only = sinks_only  # `sinks publish`: the run itself was recorded by the update's task

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        """Nothing until the run ends: skipped and failed tables are recorded too."""

    def on_run_finished(self, run: RunResult) -> None:
        try:
            if self.sinks_only:
                record_sinks(self.lakebase.connect, self.plan.config.lakebase.meta_schema, run)
                return
            record_run(self.lakebase.connect, self.plan.config.lakebase.meta_schema, run, self.plan.pipeline.name,
                       self.plan.mode, list(self.plan.order), _version(), self.rules_versions)
        except Exception as exc:  # noqa: BLE001 - the inventory never changes the run's outcome
            run.details["inventory"] = f"failed: {describe_error(exc)}"


def _version() -> str:
    try:
        return version("databricks_etl_framework")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"
