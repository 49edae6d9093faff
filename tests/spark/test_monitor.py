"""Profiling monitors on the Spark runner: metric tables in Databricks' schema with the table's own
numbers, drift between runs and against a baseline, idempotent time-series windows, alerts that warn
or fail the table (skipping its downstream), and a monitored column the output lacks."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.consumers.monitor import MonitorConsumer
from pipelines.core.config import load_config
from pipelines.core.seam import Consumers
from pipelines.engine.project import load_project
from pipelines.engine.render import summary_text
from pipelines.monitors.dashboard import monitor_dashboard
from pipelines.monitors.profile import DRIFT_SCHEMA, PROFILE_SCHEMA

from .harness import Harness

MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n",
           "silver/clean.py": "from pyspark.sql import functions as F\n"
                              "def clean(raw):\n    return raw.where(F.col('amount') > 0)\n",
           "gold/report.py": "def report(clean):\n    return clean.groupBy('country').count()\n"}


def config(monitor: str) -> str:
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source: {{type: files, format: csv, path: ./in, options: {{header: true, inferSchema: true}}}}
  - name: clean
    layer: silver
    depends_on: [raw]
    monitor: {monitor}
  - {{name: report, layer: gold, depends_on: [clean]}}
"""


def land(root: Path, name: str, rows: list[tuple[int, float, str, str]]) -> None:
    folder = root / "in"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("id,amount,country,ts\n" + "".join(f"{i},{a},{c},{t}\n" for i, a, c, t in rows))


DAY1 = [(1, 10.0, "PT", "2026-11-01 08:00:00"), (2, 20.0, "ES", "2026-11-01 09:00:00"),
        (3, -1.0, "PT", "2026-11-01 10:00:00"), (4, 40.0, "PT", "2026-11-02 08:00:00")]
DAY2 = [(5, 50.0, "ES", "2026-11-02 11:00:00"), (6, 60.0, "FR", "2026-11-03 08:00:00")]


def run(harness: Harness):
    plan = load_project(harness.path).plan
    monitor = MonitorConsumer(plan, harness.root / ".ldp")
    return harness.run(consumers=Consumers([monitor]))


def metrics(harness: Harness, kind: str) -> list[dict]:
    table = harness.spark.table(f"{harness.schema}_monitoring.clean_{kind}_metrics")
    return [r.asDict(recursive=True) for r in table.collect()]


def shape(schema) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def test_snapshot_metric_tables_have_databricks_schema_the_table_numbers_and_drift_between_runs(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=config("{slicing_exprs: [country]}"))
    land(tmp_path, "1.csv", DAY1)
    tables, result = run(harness)
    monitor = tables["clean"].monitor
    assert result.succeeded and {k: monitor[k] for k in ("profile_rows", "drift_rows", "alerts")} == {
        "profile_rows": 15, "drift_rows": 0, "alerts": []}  # (4 columns + :table) x (all, PT, ES)
    digest = {c["column"]: c for c in monitor["columns"]}  # the newest unsliced window, for summaries and reports
    assert sorted(digest) == ["amount", "country", "id", "ts"] and monitor["drift"] == []
    assert digest["amount"]["percent_null"] == 0 and digest["amount"]["min"] == 10.0 and digest["amount"]["max"] == 40.0
    assert digest["amount"]["quantiles"][0] == 10.0 and digest["amount"]["quantiles"][-1] == 40.0
    assert tables["raw"].monitor is None and tables["raw"].to_dict()["monitor"] is None
    schema = spark.table(f"{harness.schema}_monitoring.clean_profile_metrics").schema
    assert shape(schema) == shape(PROFILE_SCHEMA)
    rows = metrics(harness, "profile")
    table_rows = {(r["slice_key"], r["slice_value"]): r["count"] for r in rows if r["column_name"] == ":table"}
    assert table_rows == {(None, None): 3, ("country", "PT"): 2, ("country", "ES"): 1}
    [amount] = [r for r in rows if r["column_name"] == "amount" and r["slice_key"] is None]
    assert (amount["min"], amount["max"], amount["avg"]) == (10.0, 40.0, pytest.approx(70 / 3))
    land(tmp_path, "2.csv", DAY2)
    tables, result = run(harness)
    assert result.succeeded and tables["clean"].monitor["drift_rows"] > 0
    assert len({r["window"]["start"] for r in metrics(harness, "profile")}) == 2  # one window per run
    assert shape(spark.table(f"{harness.schema}_monitoring.clean_drift_metrics").schema) == shape(DRIFT_SCHEMA)
    drift = {(r["slice_value"], r["column_name"]): r for r in metrics(harness, "drift")}
    assert drift[(None, ":table")]["count_delta"] == 2 and drift[(None, ":table")]["drift_type"] == "CONSECUTIVE"
    assert drift[(None, "amount")]["avg_delta"] == pytest.approx(180 / 5 - 70 / 3)
    assert drift[(None, "country")]["js_distance"] > 0 and drift[(None, "country")]["ks_test"] is None
    assert drift[(None, "amount")]["ks_test"]["statistic"] > 0
    # the monitors' dashboard (`ldp_engine monitors dashboard`): its datasets' SQL on these metric tables
    volume, columns, drifted = (dashboard_rows(harness, name) for name in ("table_volume", "column_profile", "drift"))
    assert [(r["table_name"], r["row_count"]) for r in volume] == [("clean", 3), ("clean", 5)]
    assert len({r["window_start"] for r in volume}) == 2
    assert sorted({r["table_column"] for r in columns}) == ["clean.amount", "clean.country", "clean.id", "clean.ts"]
    assert len(columns) == 8 and all(r["percent_null"] == 0 for r in columns)
    assert {r["table_column"]: (r["drift_type"], r["js_distance"] > 0 if r["js_distance"] is not None else None)
            for r in drifted}["clean.country"] == ("CONSECUTIVE", True)
    [amount_drift] = [r for r in drifted if r["column_name"] == "amount"]
    assert amount_drift["ks_pvalue"] == drift[(None, "amount")]["ks_test"]["pvalue"]


def dashboard_rows(harness: Harness, dataset: str) -> list[dict]:
    """A dataset of the generated monitors' dashboard, run as the bundle runs it: unqualified metric
    table names resolved in the monitoring schema (the resource's `dataset_schema`)."""
    document = monitor_dashboard(load_config(harness.path))
    [sql] = ["".join(d["queryLines"]) for d in document["datasets"] if d["name"] == dataset]
    spark, previous = harness.spark, harness.spark.catalog.currentDatabase()
    spark.catalog.setCurrentDatabase(f"{harness.schema}_monitoring")
    try:
        return [r.asDict() for r in spark.sql(sql).collect()]
    finally:
        spark.catalog.setCurrentDatabase(previous)


def test_time_series_windows_are_replaced_on_rerun_and_drift_runs_day_to_day(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES,
                      config=config('{profile: timeseries, timestamp_col: ts, granularities: ["1 day"]}'))
    land(tmp_path, "1.csv", DAY1 + DAY2)
    run(harness)
    first = metrics(harness, "profile")
    tables, _ = run(harness)
    again = metrics(harness, "profile")
    assert len(again) == len(first) == tables["clean"].monitor["profile_rows"]  # same windows, replaced
    days = {r["window"]["start"].day: r["count"] for r in again if r["column_name"] == ":table"}
    assert days == {1: 2, 2: 2, 3: 1}
    pairs = {(r["window"]["start"].day, r["window_cmp"]["start"].day) for r in metrics(harness, "drift")}
    assert pairs == {(2, 1), (3, 2)}


def test_baseline_drift_compares_each_window_with_the_baseline_table(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=config("{baseline_table: raw}"))
    land(tmp_path, "1.csv", DAY1)
    run(harness)
    baseline = [r for r in metrics(harness, "profile") if r["log_type"] == "BASELINE"]
    assert {r["column_name"]: r["count"] for r in baseline}[":table"] == 4
    [table] = [r for r in metrics(harness, "drift") if r["column_name"] == ":table"]
    assert table["drift_type"] == "BASELINE" and table["count_delta"] == 3 - 4
    run(harness)  # the baseline is profiled again, not accumulated
    assert len([r for r in metrics(harness, "profile") if r["log_type"] == "BASELINE"]) == len(baseline)


def test_an_alert_warns_by_default_and_on_alert_fail_fails_the_table_and_skips_downstream(spark, tmp_path):
    alert = '{metric: count, column: ":table", op: "<", threshold: 10}'
    harness = Harness(spark, tmp_path, MODULES, config=config(f"{{alerts: [{alert}]}}"))
    land(tmp_path, "1.csv", DAY1)
    tables, result = run(harness)
    assert result.succeeded
    [fired] = tables["clean"].monitor["alerts"]
    assert {k: fired[k] for k in ("metric", "column", "value", "op", "threshold")} == {
        "metric": "count", "column": ":table", "value": 3, "op": "<", "threshold": 10.0}
    assert "Monitor alerts:\n  clean: count(:table) = 3 < 10" in summary_text(result)
    (tmp_path / "f").mkdir()
    failing = Harness(spark, tmp_path / "f", MODULES, config=config(f"{{alerts: [{alert}], on_alert: fail}}"))
    land(tmp_path / "f", "1.csv", DAY1)
    tables, result = run(failing)
    assert tables["clean"].status == "failed" and "count(:table) = 3 < 10" in tables["clean"].error
    assert tables["report"].status == "skipped"
    assert failing.table("clean").count() == 3  # written, then failed by its monitor


def test_a_monitor_naming_a_column_the_output_lacks_fails_the_table_before_it_is_written(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=config(
        '{profile: timeseries, timestamp_col: event_time, granularities: ["1 hour"]}'))
    land(tmp_path, "1.csv", DAY1)
    tables, _ = run(harness)
    error = tables["clean"].error
    assert tables["clean"].status == "failed" and "timestamp_col 'event_time'" in error
    assert "available: id, amount, country, ts" in error
    assert not spark.catalog.tableExists(f"{harness.schema}.clean")


def test_a_slicing_expression_that_does_not_resolve_fails_the_table_before_it_is_written(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=config("{slicing_exprs: [contry]}"))
    land(tmp_path, "1.csv", DAY1)
    tables, _ = run(harness)
    assert tables["clean"].status == "failed"
    assert "slicing expression 'contry' does not resolve on the table" in tables["clean"].error
    assert not spark.catalog.tableExists(f"{harness.schema}.clean")
