"""The run summary as text: a CDC table's change counts are listed under their own heading."""
from __future__ import annotations

from pipelines.core.results import RunResult, TableResult
from pipelines.core.vocabulary import TableStatus
from pipelines.engine.render import summary_text


def test_cdc_change_counts_are_listed_per_table():
    history = TableResult("customers_history", "silver", TableStatus.SUCCESS, rows_written=3, rows_total=7,
                          changes={"upserts": 2, "deletes": 1, "versions_opened": 2})
    plain = TableResult("orders", "silver", TableStatus.SUCCESS, rows_written=10)
    text = summary_text(RunResult("spark", tables=[history, plain]))
    assert "Changes applied (CDC):\n  customers_history: 2 upserts, 1 deletes, 2 versions opened" in text
    assert "orders:" not in text.split("Changes applied (CDC):")[1]


def test_each_flow_of_a_table_with_flows_is_listed_with_its_rows():
    orders = TableResult("orders", "bronze", TableStatus.SUCCESS, rows_written=3, rows_quarantined=2, flows={
        "eu": {"rows_written": 1, "rows_quarantined": 2, "rows_dropped": 0},
        "backfill": {"rows_written": 2, "rows_quarantined": 0, "rows_dropped": 0}})
    text = summary_text(RunResult("spark", tables=[orders]))
    assert "Flows:\n  orders.eu: 1 row(s), 2 quarantined\n  orders.backfill: 2 row(s)\n" in text + "\n"
    assert RunResult("spark", tables=[orders]).to_dict()["tables"][0]["flows"]["backfill"]["rows_written"] == 2


def test_rows_landed_by_incremental_database_reads_are_listed_per_table_and_flow():
    orders = TableResult("orders", "bronze", TableStatus.SUCCESS, rows_written=3, landed={"orders": 2, "eu": 0})
    plain = TableResult("customers", "bronze", TableStatus.FAILED, rows_written=None)
    text = summary_text(RunResult("spark", tables=[orders, plain]))
    assert ("Landed (incremental database reads):\n  orders: 2 new row(s) from the database\n"
            "  orders.eu: 0 new row(s) from the database") in text
    tables = RunResult("spark", tables=[orders, plain]).to_dict()["tables"]
    assert tables[0]["landed"] == {"orders": 2, "eu": 0} and "landed" not in tables[1]
