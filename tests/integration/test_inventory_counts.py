"""The run inventory keeps what a Databricks update's event log counts beyond a local run: each check's
passed rows, and a table's total beside the rows this run wrote; and a CDC table's change events by
kind (a real PostgreSQL)."""
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


def test_a_cdc_tables_changes_and_an_additive_contracts_new_columns_are_recorded_as_json_else_null(lakebase):
    changes = {"upserts": 5, "deletes": 1, "versions_opened": 4}
    run = RunResult("spark", tables=[
        TableResult("history", "silver", TableStatus.SUCCESS, rows_written=6, rows_total=40, changes=changes),
        TableResult("orders", "silver", TableStatus.SUCCESS, rows_written=7, new_columns=["note", "channel"])])
    run.finished_at = run.started_at + 1
    record_run(lakebase.connect, "invchanges_meta", run, "shop", "batch", ["history", "orders"], "0.1.0")
    assert rows(lakebase, "SELECT table_name, rows_written, changes, new_columns FROM invchanges_meta.table_runs "
                          "ORDER BY 1") == [("history", 6, changes, None), ("orders", 7, None, ["note", "channel"])]


def test_the_reports_history_from_the_inventory_has_each_checks_failure_rate(lakebase):
    from pipelines.lakebase.inventory import table_history

    for number, failed in enumerate((2, 5)):
        run = RunResult("spark", run_id=f"h{number}", started_at=1_700_000_000 + number, tables=[
            TableResult("orders", "silver", TableStatus.SUCCESS, rows_written=8, rows_quarantined=2, checks=[
                CheckResult("amount_positive", Criticality.ERROR, failed=failed),
                CheckResult("not_late", Criticality.WARN, failed=None)]),
            TableResult("other", "gold", TableStatus.SUCCESS, rows_written=3)])
        run.finished_at = run.started_at + 1
        record_run(lakebase.connect, "invhistory_meta", run, "shop", "batch", ["orders"], "0.1.0")
    history = table_history(lakebase.connect, "invhistory_meta", ["orders", "other"])
    assert [(r["run_id"], r["failure_rates"]) for r in history["orders"]] == [
        ("h0", {"amount_positive": 0.2}), ("h1", {"amount_positive": 0.5})]  # not_late: no count, left out
    assert [(r["run_id"], r["rows_written"], r["failure_rates"]) for r in history["other"]] == [
        ("h0", 3, {}), ("h1", 3, {})]
