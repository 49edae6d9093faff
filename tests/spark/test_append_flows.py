"""Several flows into one streaming table (`flows:`, LDP's `append_flow`), on the Spark runner: each flow
appends what is new in its own input under its own checkpoint, a `once` backfill appends a single time,
checks apply per flow with counts per flow and in total, and adding a flow reprocesses none of the
others. In batch mode the table is the union of its flows' rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .harness import Harness

SCHEMA = "id INT, amount INT"
MODULES = {
    "bronze/eu.py": "from pyspark.sql import functions as F\n\n"
                    "def eu(source):\n    return source.withColumn('region', F.lit('eu'))\n",
    "bronze/us.py": "from pyspark.sql import functions as F\n\n"
                    "def us(us_raw):\n    return us_raw.withColumn('region', F.lit('us'))\n",
    "bronze/us_raw.py": "def us_raw(source):\n    return source\n",
    "silver/totals.py": "def totals(orders):\n    return orders.groupBy('region').count()\n",
}
FLOWS = f"""
      - {{name: eu, source: {{type: files, format: json, path: ./eu, schema: '{SCHEMA}'}}}}
      - {{name: us, depends_on: [us_raw]}}
      - {{name: history, once: true,
          source: {{type: files, format: json, path: ./history, schema: '{SCHEMA}, region STRING'}}}}
"""


def config(flows: str = FLOWS) -> str:
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: us_raw
    layer: bronze
    source: {{type: files, format: json, path: ./us, schema: '{SCHEMA}'}}
  - name: orders
    layer: bronze
    expectations:
      - {{name: positive_amount, criticality: error, check: {{function: sql_expression,
          arguments: {{expression: "amount > 0"}}}}}}
    flows:{flows}
  - name: totals
    layer: silver
    depends_on: [orders]
"""


def land(root: Path, folder: str, name: str, rows: list[dict | str]) -> None:
    (root / folder).mkdir(exist_ok=True)
    (root / folder / f"{name}.json").write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))


def rows(harness: Harness, table: str = "orders") -> list[tuple]:
    return sorted((r["region"], r["id"], r["amount"]) for r in harness.table(table).collect())


@pytest.fixture
def landed(tmp_path: Path) -> Path:
    return land_first(tmp_path)


def land_first(tmp_path: Path) -> Path:
    """Each flow's first file: eu with a failing and a malformed row, us, and the backfill's only one."""
    land(tmp_path, "eu", "1", [{"id": 1, "amount": 10}, {"id": 2, "amount": -1}, "{not json"])
    land(tmp_path, "us", "1", [{"id": 3, "amount": 30}])
    land(tmp_path, "history", "1", [{"id": 90, "amount": 5, "region": "old"},
                                    {"id": 91, "amount": 0, "region": "old"}])
    return tmp_path


def test_two_append_flows_and_a_once_backfill_over_two_runs_with_exact_counts(spark, landed):
    harness = Harness(spark, landed, MODULES, config=config())
    tables, result = harness.run(mode="streaming")
    assert result.succeeded, result.to_dict()
    orders = tables["orders"]
    assert orders.flows == {"eu": {"rows_written": 1, "rows_quarantined": 2, "rows_dropped": 0},
                            "us": {"rows_written": 1, "rows_quarantined": 0, "rows_dropped": 0},
                            "history": {"rows_written": 1, "rows_quarantined": 1, "rows_dropped": 0}}
    assert (orders.rows_written, orders.rows_quarantined, orders.rows_total) == (3, 3, 3)
    assert sorted((c.name, c.failed) for c in orders.checks) == [("malformed_record", 1), ("positive_amount", 2)]
    assert rows(harness) == [("eu", 1, 10), ("old", 90, 5), ("us", 3, 30)]
    assert sorted(r["id"] or 0 for r in harness.table("orders_quarantine").collect()) == [0, 2, 91]
    assert sorted((r["region"], r["count"]) for r in harness.table("totals").collect()) == [
        ("eu", 1), ("old", 1), ("us", 1)]

    land(landed, "eu", "2", [{"id": 4, "amount": 40}])
    land(landed, "history", "2", [{"id": 92, "amount": 7, "region": "old"}])  # the backfill ran: not read
    tables, result = harness.run(mode="streaming")
    assert result.succeeded, result.to_dict()
    assert tables["orders"].flows == {"eu": {"rows_written": 1, "rows_quarantined": 0, "rows_dropped": 0},
                                      "us": {"rows_written": 0, "rows_quarantined": 0, "rows_dropped": 0},
                                      "history": {"rows_written": 0, "rows_quarantined": 0, "rows_dropped": 0}}
    assert (tables["orders"].rows_written, tables["orders"].rows_total) == (1, 4)
    assert rows(harness) == [("eu", 1, 10), ("eu", 4, 40), ("old", 90, 5), ("us", 3, 30)]
    assert harness.table("orders_quarantine").count() == 3
    assert json.loads(json.dumps(result.to_dict()))["tables"][1]["flows"]["eu"]["rows_written"] == 1


def test_a_flow_added_later_reads_its_input_and_reprocesses_none_of_the_others(spark, landed):
    first_two = "\n".join(FLOWS.strip("\n").splitlines()[:2]) + "\n"
    harness = Harness(spark, landed, MODULES, config=config("\n" + first_two))
    assert harness.run(mode="streaming")[1].succeeded
    assert rows(harness) == [("eu", 1, 10), ("us", 3, 30)]
    harness.path.write_text(config().replace("SCHEMA", harness.schema))  # the backfill flow added
    tables, result = harness.run(mode="streaming")
    assert result.succeeded, result.to_dict()
    assert {name: counts["rows_written"] for name, counts in tables["orders"].flows.items()} == {
        "eu": 0, "us": 0, "history": 1}
    assert rows(harness) == [("eu", 1, 10), ("old", 90, 5), ("us", 3, 30)]


def test_in_batch_mode_the_table_is_the_union_of_its_flows_rows_recomputed(spark, landed):
    harness = Harness(spark, landed, MODULES, config=config())
    for _ in range(2):  # recomputed, not appended: the same rows on a rerun
        tables, result = harness.run()
        assert result.succeeded, result.to_dict()
        assert rows(harness) == [("eu", 1, 10), ("old", 90, 5), ("us", 3, 30)]
        assert (tables["orders"].rows_written, tables["orders"].rows_quarantined) == (3, 3)


@pytest.mark.parametrize("runtime", ["databricks", "open_source"])
def test_flows_register_as_a_streaming_table_and_one_append_flow_each(spark, landed, runtime):
    """On Databricks: `create_streaming_table` for the table and its quarantine, then per flow a checked
    view and two append flows (passing rows into the table, failing into the quarantine), the backfill's
    with `once=True` over a batch read. Open-source SDP's `append_flow` has no `once`: there the backfill
    reads its files as a stream, read a single time by its checkpoint."""
    from pyspark import pipelines as dp

    from tests.spark.test_registrar import CapturingRegistry, databricks_dp, read_tables

    once_given: dict[str, bool] = {}

    class EveryFlow(CapturingRegistry):
        def __init__(self) -> None:
            super().__init__()
            self.every_flow: list = []

        def register_flow(self, flow) -> None:
            self.every_flow.append(flow)
            super().register_flow(flow)

    def api(registry: CapturingRegistry):
        found = databricks_dp(registry)
        if runtime == "databricks":
            def append_flow(*, target: str, name: str | None = None, spark_conf=None, once: bool = False):
                once_given[name] = once
                return dp.append_flow(target=target, name=name, spark_conf=spark_conf)
            found.append_flow = append_flow
        return found

    harness = Harness(spark, landed, MODULES, config=config())
    registry = _register(spark, harness.path, api, EveryFlow)
    tables = [(name, kwargs["name"]) for name, kwargs in registry.cdc_calls if name == "create_streaming_table"]
    assert tables == [("create_streaming_table", "orders"), ("create_streaming_table", "orders_quarantine")]
    flows = {flow.name: flow.target for flow in registry.every_flow if flow.target.startswith("orders")}
    assert flows == {"eu": "orders", "eu__quarantine": "orders_quarantine", "us": "orders",
                     "us__quarantine": "orders_quarantine", "history": "orders",
                     "history__quarantine": "orders_quarantine"}
    assert {"eu__checked", "us__checked", "history__checked"} <= set(registry.outputs)
    if runtime == "databricks":
        assert once_given == {"eu": False, "eu__quarantine": False, "us": False, "us__quarantine": False,
                              "history": True, "history__quarantine": True}
    spark.readStream.format("rate").load().selectExpr("CAST(value AS INT) AS id", "1 AS amount"
                                                      ).createOrReplaceTempView("us_raw")  # the pipeline's
    try:
        checked = {name: registry.flows[name].func() for name in ("eu__checked", "us__checked", "history__checked")}
    finally:
        spark.catalog.dropTempView("us_raw")
    assert checked["eu__checked"].isStreaming and checked["us__checked"].isStreaming
    assert checked["history__checked"].isStreaming is (runtime == "open_source")
    for name, rows in checked.items():  # what the pipeline would hold under each view's name
        rows.createOrReplaceTempView(name)
    try:  # each flow reads its own checked view, called after every flow is defined
        read = {flow.name: read_tables(flow.func()) for flow in registry.every_flow if flow.target.startswith("orders")}
    finally:
        for name in checked:
            spark.catalog.dropTempView(name)
    assert read == {name: {name.removesuffix("__quarantine") + "__checked"} for name in flows}


def _register(spark, config: Path, api, registry_class):
    from pyspark.pipelines.graph_element_registry import graph_element_registration_context

    from pipelines.engine.project import load_project
    from pipelines.ldp.registrar import Registrar

    project = load_project(config, mode="streaming")
    registry = registry_class()
    with graph_element_registration_context(registry):
        Registrar(spark, project.plan, project.functions, api(registry)).register()
    return registry


def test_a_streaming_tables_own_upstream_tables_stay_batch_reads_over_two_runs(spark, tmp_path):
    """Only a flow reads its upstream tables as streams: a streaming table with a source joins its
    upstream materialized view read whole (a stream-static join), which the view's rewrite on the
    next run does not break."""
    modules = {"bronze/codes.py": "def codes(spark):\n    return spark.createDataFrame([(1, 'one'), (2, 'two')], "
                                  "'id INT, code STRING')\n",
               "bronze/events.py": "def events(source, codes):\n    return source.join(codes, 'id')\n"}
    harness = Harness(spark, tmp_path, modules, config=f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - {{name: codes, layer: bronze}}
  - {{name: events, layer: bronze, depends_on: [codes],
     source: {{type: files, format: json, path: ./in, schema: '{SCHEMA}'}}}}
""")
    land(tmp_path, "in", "1", [{"id": 1, "amount": 5}])
    assert harness.run(mode="streaming")[1].succeeded
    land(tmp_path, "in", "2", [{"id": 2, "amount": 6}])
    tables, result = harness.run(mode="streaming")
    assert result.succeeded, result.to_dict()
    assert tables["events"].rows_written == 1
    assert sorted((r["id"], r["code"]) for r in harness.table("events").collect()) == [(1, "one"), (2, "two")]
