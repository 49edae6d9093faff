"""The pipeline-health dashboard's queries on real data: two runs recorded in the inventory by the
engine's own `record_run` on a real PostgreSQL, then every dataset query of
`dashboards/pipeline_health.lvdash.json`, translated from Databricks SQL by sqlglot, returns exactly
the rows those runs imply (on Databricks the same queries read the inventory through its database
catalog)."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import sqlglot

from pipelines.core.results import CheckResult, RunResult, TableResult
from pipelines.core.vocabulary import Criticality, TableStatus
from pipelines.lakebase.inventory import record_run

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "pipeline_health.lvdash.json"
META = "dash_meta"
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + minutes * 60, tz=timezone.utc)


def runs() -> list[RunResult]:
    """A clean run (a check failing 2 of 12 rows, an alert, a sink) and, a day later, a failed one."""
    orders = TableResult("orders", "silver", TableStatus.SUCCESS, rows_written=10, rows_quarantined=2, seconds=3.5,
                         checks=[CheckResult("amount_positive", Criticality.ERROR, failed=2),
                                 CheckResult("not_late", Criticality.WARN, failed=3, passed=9)],
                         monitor={"alerts": [{"metric": "percent_null", "column": "country", "value": 25.0,
                                              "op": ">", "threshold": 20.0, "window_start": "2026-11-30"}]},
                         sinks=[{"target": "app.orders", "mode": "overwrite", "rows": 10, "status": "success",
                                 "error": None}])
    first = RunResult("spark", tables=[orders], run_id="r1", started_at=at(0).timestamp())
    first.finished_at = at(1.5).timestamp()
    broken = TableResult("orders", "silver", TableStatus.FAILED, rows_written=None, rows_quarantined=None,
                         rows_dropped=None, checks=None, seconds=1.25, error="boom",
                         sinks=[{"target": "app.orders", "mode": "overwrite", "rows": None, "status": "failed",
                                 "error": "refused"}])
    second = RunResult("pipeline", tables=[broken], run_id="r2", started_at=at(24 * 60).timestamp())
    second.finished_at = at(24 * 60 + 2).timestamp()
    return [first, second]


def dataset_rows(lakebase, dataset: dict) -> list[tuple]:
    query = sqlglot.transpile("".join(dataset["queryLines"]), read="databricks", write="postgres")[0]
    with lakebase.connect() as conn:
        conn.execute(f"SET search_path TO {META}")  # the dashboard's dataset_schema
        return conn.execute(query + " ORDER BY 1, 2, 3").fetchall()


def test_every_dashboard_query_returns_the_recorded_runs_numbers(lakebase):
    for run in runs():
        record_run(lakebase.connect, META, run, "shop", "batch", ["orders"], "1.2.0")
    datasets = {d["name"]: d for d in json.loads(DASHBOARD.read_text())["datasets"]}
    assert dataset_rows(lakebase, datasets["runs"]) == [
        ("r1", "shop", "spark", "batch", "success", at(0), at(1.5), 90, None),
        ("r2", "shop", "pipeline", "batch", "failed", at(1440), at(1442), 120, None)]
    assert dataset_rows(lakebase, datasets["table_runs"]) == [
        ("r1", at(0), "orders", "success", 10, 2, 0, None, 3.5, None),
        ("r2", at(1440), "orders", "failed", None, None, None, None, 1.25, "boom")]
    assert dataset_rows(lakebase, datasets["check_failure_rates"]) == [  # no passed count: the table's rows
        ("r1", at(0), "orders", "amount_positive", "error", 2, 12, 2 / 12),
        ("r1", at(0), "orders", "not_late", "warn", 3, 12, 3 / 12)]
    assert dataset_rows(lakebase, datasets["alerts_fired"]) == [
        ("r1", at(0), "orders", "percent_null", "country", 25.0, ">", 20.0, None, "2026-11-30")]
    before = datetime.now(timezone.utc)
    [(target, last_run, last_at, status, last_success, rows, minutes)] = dataset_rows(
        lakebase, datasets["sink_freshness"])
    after = datetime.now(timezone.utc)
    assert (target, last_run, status, rows) == ("app.orders", "r2", "failed", 10)
    assert (last_at, last_success) == (at(1442), at(1.5))  # the last success outlives the failed run
    # whole minutes since the last success, as of the query (PostgreSQL's translation may round up)
    since = [(moment - at(1.5)).total_seconds() / 60 for moment in (before, after)]
    assert math.floor(since[0]) <= minutes <= math.ceil(since[1]), (minutes, since)
