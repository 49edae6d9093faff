"""The run inventory keeps what a Databricks update's event log counts beyond a local run: each check's
passed rows, and a table's total beside the rows this run wrote (a real PostgreSQL)."""
from __future__ import annotations

from pipelines.core.results import CheckResult, RunResult, TableResult
from pipelines.core.vocabulary import Criticality, TableStatus
from pipelines.lakebase.inventory import record_run
from tests.integration.conftest import rows


def test_check_passed_counts_and_rows_total_are_recorded_and_a_missing_count_stays_null(lakebase):
    run = RunResult("pipeline", tables=[
        TableResult("orders", "silver", TableStatus.SUCCESS, rows_written=7, rows_total=70, checks=[
            CheckResult("amount_positive", Criticality.ERROR, failed=2, passed=8),
            CheckResult("not_late", Criticality.WARN, failed=None)])])
    run.finished_at = run.started_at + 1
    record_run(lakebase.connect, "invcounts_meta", run, "shop", "batch", ["orders"], "0.1.0")
    assert rows(lakebase, "SELECT check_name, failed, passed FROM invcounts_meta.check_results ORDER BY 1") == [
        ("amount_positive", 2, 8), ("not_late", None, None)]
    assert rows(lakebase, "SELECT rows_written, rows_total FROM invcounts_meta.table_runs") == [(7, 70)]
