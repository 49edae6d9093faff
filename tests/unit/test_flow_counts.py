"""Each append flow's rows on the SDP runner, from the stored tables' Delta logs and the flows'
checkpoint folders (the integration test compares them with the Spark runner's on real SDP runs):
only the run's own commits count, a quarantine flow counts into its flow's quarantined rows, a
checkpoint a full refresh replaced still names its flow, a flow with no commit counts 0."""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.core.config import parse_config
from pipelines.core.plan import build_plan
from pipelines.ldp.flow_counts import flow_counts

CONFIG = """
pipeline: {schema: Shop, transformations: ./transformations}
tables:
  - name: Orders
    layer: bronze
    expectations:
      - {name: id_known, criticality: error, check: {function: is_not_null, arguments: {column: id}}}
    flows:
      - {name: EU, source: {type: files, format: json, path: ./eu}}
      - {name: us, source: {type: files, format: json, path: ./us}}
      - {name: history, once: true, source: {type: files, format: json, path: ./history}}
  - {name: totals, layer: silver, depends_on: [Orders]}
"""


def commit(log: Path, version: int, run_id: str, query: str | None, rows: int) -> None:
    info = {"timestamp": 1_000 * version, "operation": "STREAMING UPDATE" if query else "CREATE TABLE",
            "operationParameters": {"queryId": query, "epochId": "0"} if query else {},
            "operationMetrics": {"numOutputRows": str(rows)} if query else {}, "userMetadata": run_id}
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{version:020d}.json").write_text(json.dumps({"commitInfo": info}) + "\n")


def checkpoint(catalog: Path, dataset: str, flow: str, number: int, query: str) -> None:
    folder = catalog / "storage/_checkpoints/spark_catalog/shop" / dataset / flow / str(number)
    folder.mkdir(parents=True)
    (folder / "metadata").write_text(json.dumps({"id": query}) + "\n")


def test_each_flows_rows_of_the_run_from_the_delta_log_and_the_checkpoints(tmp_path: Path):
    plan = build_plan(parse_config(CONFIG, tmp_path / "config.yml"), mode="streaming")
    orders, totals = plan.tables
    table_log = tmp_path / "warehouse/shop.db/orders/_delta_log"
    quarantine_log = tmp_path / "warehouse/shop.db/orders_quarantine/_delta_log"
    checkpoint(tmp_path, "orders", "EU", 0, "eu-before-refresh")
    checkpoint(tmp_path, "orders", "EU", 1, "eu-now")  # a full refresh started a new checkpoint
    checkpoint(tmp_path, "orders", "us", 0, "us-0")
    checkpoint(tmp_path, "orders_quarantine", "EU__quarantine", 0, "eu-q")
    commit(table_log, 0, "run-1", None, 0)
    commit(table_log, 1, "run-1", "eu-before-refresh", 5)  # an earlier run: not this one's
    commit(table_log, 2, "run-2", "eu-before-refresh", 2)
    commit(table_log, 3, "run-2", "eu-now", 3)
    commit(table_log, 4, "run-2", "us-0", 4)
    commit(table_log, 5, "run-2", "someone-else", 9)  # a query no flow of the table ran
    commit(quarantine_log, 0, "run-2", "eu-q", 1)

    assert flow_counts(tmp_path, "Shop", orders, "run-2") == {
        "EU": {"rows_written": 5, "rows_quarantined": 1, "rows_dropped": 0},
        "us": {"rows_written": 4, "rows_quarantined": 0, "rows_dropped": 0},
        "history": {"rows_written": 0, "rows_quarantined": 0, "rows_dropped": 0}}
    assert flow_counts(tmp_path, "Shop", orders, "run-3")["EU"]["rows_written"] == 0
    assert flow_counts(tmp_path, "Shop", totals, "run-2") is None  # no append flows: not counted per flow


def test_a_table_not_stored_yet_counts_zero_per_flow(tmp_path: Path):
    orders = build_plan(parse_config(CONFIG, tmp_path / "config.yml"), mode="streaming").tables[0]
    assert {name: counts["rows_written"] for name, counts in flow_counts(tmp_path, "Shop", orders, "r").items()} == {
        "EU": 0, "us": 0, "history": 0}
