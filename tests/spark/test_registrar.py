"""The example registered as pipeline datasets through the real `pyspark.pipelines` API.

A capturing GraphElementRegistry records what the pipeline runtime would receive; calling each
flow's function gives the DataFrame the runtime would materialize, compared with the Spark runner's.
AUTO CDC calls are recorded as Databricks' `dp` takes them: open-source SDP 4.2 has SCD type 1 only.
"""
from __future__ import annotations

import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from pyspark import pipelines as dp
from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context
from pyspark.pipelines.output import MaterializedView, StreamingTable, TemporaryView

from pipelines.engine.embedded_kafka import embedded_kafka
from pipelines.engine.project import load_project
from pipelines.runners.spark import SparkRunner
from pipelines.catalog.storage import TableStore
from pipelines.ldp.registrar import Registrar
from tests.comparison import assert_same_table


class CapturingRegistry(GraphElementRegistry):
    def __init__(self) -> None:
        self.outputs: dict[str, object] = {}
        self.flows: dict[str, object] = {}
        self.cdc_calls: list[tuple[str, dict]] = []  # create_streaming_table / create_auto_cdc_flow

    def register_output(self, output) -> None:
        self.outputs[output.name] = output

    def register_flow(self, flow) -> None:
        self.flows[flow.target] = flow

    def register_auto_cdc_flow(self, flow) -> None:
        self.flows[flow.target] = flow

    def register_sql(self, sql_text, file_path) -> None:
        raise AssertionError("the registrar defines datasets in Python only")


def databricks_dp(registry: CapturingRegistry) -> types.SimpleNamespace:
    """The open-source `dp`, with its AUTO CDC functions recorded into `registry.cdc_calls` as
    Databricks' takes them (SCD type 2 too)."""
    def recorded(function: str):
        return lambda **kwargs: registry.cdc_calls.append((function, kwargs))

    functions = {n: getattr(dp, n) for n in dir(dp) if not n.startswith("_")}
    functions.update(create_streaming_table=recorded("create_streaming_table"),
                     create_auto_cdc_flow=recorded("create_auto_cdc_flow"))
    return types.SimpleNamespace(**functions)


def register(spark, config: Path, mode: str = "batch", api: Callable[[CapturingRegistry], Any] = databricks_dp,
             schema: str | None = None):
    project = load_project(config, mode=mode, schema=schema)
    registry = CapturingRegistry()
    with graph_element_registration_context(registry):
        Registrar(spark, project.plan, project.functions, api(registry),
                  sink_functions=project.sink_functions).register()
    return project, registry


def read_tables(flow_df) -> set[str]:
    """Datasets a flow reads by name (the views standing in for them, outermost only): what the
    pipeline runtime sees as its dependencies."""
    plan = flow_df._jdf.queryExecution().analyzed().toString()
    names, ancestors = set(), []  # (indent, is_view) of the lines above the current one in the tree
    for line in plan.splitlines():
        indent = len(line) - len(line.lstrip(" :+-"))
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        is_view = line.lstrip(" :+-").startswith("View (`")
        if is_view and not any(view for _, view in ancestors):
            names.add(line.split("View (`", 1)[1].split("`", 1)[0])
        ancestors.append((indent, is_view))
    return names


def test_example_becomes_materialized_views_with_quarantine_and_checked_views(spark, example_project):
    _, registry = register(spark, example_project / "config.yml")
    kinds = {name: type(output) for name, output in registry.outputs.items()}
    assert kinds == {
        # bronze tables read csv/json with a declared schema: checked for malformed records
        "customers_bronze__checked": TemporaryView, "customers_bronze": MaterializedView,
        "customers_bronze_quarantine": MaterializedView, "orders_bronze__checked": TemporaryView,
        "orders_bronze": MaterializedView, "orders_bronze_quarantine": MaterializedView,
        # Kafka json values, checked for malformed ones the same way
        "order_events_bronze__checked": TemporaryView, "order_events_bronze": MaterializedView,
        "order_events_bronze_quarantine": MaterializedView,
        "customers_silver__checked": TemporaryView, "customers_silver": MaterializedView,
        "customers_silver_quarantine": MaterializedView, "orders_silver__checked": TemporaryView,
        "orders_silver": MaterializedView, "orders_silver_quarantine": MaterializedView,
        "customers_gold": MaterializedView, "customer_orders_gold": MaterializedView,
        # a CDC table: its checked feed, the passing rows AUTO CDC applies, the failing ones as a stream
        "customers_history__checked": TemporaryView, "customers_history__cdc_feed": TemporaryView,
        "customers_history_quarantine": StreamingTable}
    assert registry.cdc_calls == [
        ("create_streaming_table", {"name": "customers_history", "comment": registry.cdc_calls[0][1]["comment"]}),
        ("create_auto_cdc_flow", {"target": "customers_history", "source": "customers_history__cdc_feed",
                                  "keys": ["customer_id"], "sequence_by": "updated_at", "stored_as_scd_type": 2})]
    assert registry.cdc_calls[0][1]["comment"].startswith("Every version of each customer")
    orders = registry.outputs["orders_silver"]
    assert orders.partition_cols == ["currency"] and orders.comment.startswith("Orders typed")
    assert registry.outputs["orders_silver_quarantine"].partition_cols == ["currency"]
    assert registry.outputs["customer_orders_gold"].table_properties == {"quality": "gold"}
    assert set(registry.flows) == set(registry.outputs)


def test_flows_read_their_upstream_tables_the_pipeline_way(spark, example_project):
    project, registry = register(spark, example_project / "config.yml")
    with embedded_kafka(project.plan, example_project / ".ldp", print):  # the order events' broker
        _materialize_as_views(spark, registry)
        reads = {name: read_tables(flow.func()) for name, flow in _batch_flows(registry).items()}
    assert reads["customers_bronze__checked"] == set()  # files
    assert reads["customers_bronze"] == {"customers_bronze__checked"}
    assert reads["orders_silver__checked"] == {"orders_bronze", "customers_silver"}
    assert reads["orders_silver"] == reads["orders_silver_quarantine"] == {"orders_silver__checked"}
    assert reads["customer_orders_gold"] == {"customers_silver", "orders_silver"}


def test_every_flow_gives_the_spark_runners_table(spark, example_project):
    config = example_project / "config.yml"
    project, registry = register(spark, config, schema="reg_cmp")
    store = TableStore(spark, project.plan.pipeline, example_project / ".ldp")
    with embedded_kafka(project.plan, example_project / ".ldp", print):  # the order events' broker, seeded
        result = SparkRunner(spark, project.plan, project.functions, store).run()
        assert result.status == "success"
        _materialize_as_views(spark, registry)
        compared = [name for name, output in registry.outputs.items() if isinstance(output, MaterializedView)]
        for name in compared:  # the views read the topic again: while the broker runs
            assert_same_table(spark.table(name), spark.table(f"reg_cmp.{name}"))
    assert len(compared) == 12


def test_streaming_mode_makes_file_sourced_tables_streaming_tables(spark, example_project):
    _, registry = register(spark, example_project / "config.yml", mode="streaming")
    assert isinstance(registry.outputs["orders_bronze"], StreamingTable)
    assert isinstance(registry.outputs["customers_silver"], MaterializedView)
    assert registry.flows["orders_bronze__checked"].func().isStreaming


def test_native_expectations_attach_where_the_runtime_has_them(spark, example_project):
    """Databricks' `dp` has expect_all; SQL-expressible checks are attached to the checked view."""
    attached: dict[str, dict[str, str]] = {}

    def expect_all(expectations):
        def decorate(function):
            attached[function.__name__] = dict(expectations)
            return function
        return decorate

    _, registry = register(spark, example_project / "config.yml",
                           api=lambda registry: types.SimpleNamespace(**vars(databricks_dp(registry)),
                                                                      expect_all=expect_all))
    assert set(attached) == {"customers_bronze__checked", "orders_bronze__checked", "order_events_bronze__checked",
                             "customers_history__checked",
                             "customers_silver__checked", "orders_silver__checked"}
    assert attached["orders_silver__checked"] == {
        "amount_not_null": "NOT coalesce((amount IS NULL), false)",
        "amount_not_negative": "NOT coalesce((NOT (amount >= 0)), false)",
        "customer_id_not_null": "NOT coalesce((customer_id IS NULL), false)",
        "customer_known": "NOT coalesce((country IS NULL), false)",
        "not_late": "NOT coalesce((NOT (NOT is_late)), false)"}
    assert set(attached["customers_silver__checked"]) == {"customer_id_not_null", "email_not_null", "email_valid"}
    assert attached["customers_silver__checked"]["email_valid"].startswith("NOT coalesce(((email IS NOT NULL) AND")
    assert isinstance(registry.outputs["customers_silver__checked"], TemporaryView)


def test_entry_source_defines_every_table_whatever_the_tags(spark, example_project):
    from pipelines.core.errors import ConfigError
    from pipelines.engine.entry import register_pipeline

    with pipeline_configuration(spark, {"ldp.config": str(example_project / "config.yml"), "ldp.tags": "gold"}):
        registry = CapturingRegistry()
        with graph_element_registration_context(registry):
            register_pipeline(spark, databricks_dp(registry))
        assert {"customers_bronze", "customers_gold", "orders_silver_quarantine"} <= set(registry.outputs)
        spark.conf.set("ldp.tags", "hourly")
        with pytest.raises(ConfigError, match="hourly"), graph_element_registration_context(CapturingRegistry()):
            register_pipeline(spark, dp)


@contextmanager
def pipeline_configuration(spark, settings: dict[str, str]) -> Iterator[None]:
    """The pipeline's `configuration:` entries, as Databricks sets them on the session, for one test."""
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key in settings:
            spark.conf.unset(key)


def _materialize_as_views(spark, registry_or_flows) -> None:
    """Evaluate the flows in definition order (topological), each visible to the next by its name."""
    flows = registry_or_flows if isinstance(registry_or_flows, dict) else _batch_flows(registry_or_flows)
    for name, flow in flows.items():
        flow.func().createOrReplaceTempView(name)


def _batch_flows(registry: CapturingRegistry) -> dict[str, Any]:
    """The flows a view can stand in for. A CDC table's flows read their input as a stream, which a
    batch view cannot give: the SDP runner's tests compare those tables."""
    cdc = [kwargs["target"] for function, kwargs in registry.cdc_calls if function == "create_auto_cdc_flow"]
    return {name: flow for name, flow in registry.flows.items()
            if not any(name == table or name.startswith(table + "_") for table in cdc)}


@pytest.fixture(autouse=True)
def _drop_views(spark):
    yield
    for view in spark.catalog.listTables():
        if view.isTemporary:
            spark.catalog.dropTempView(view.name)


ON_ERROR_CHECKS = """
      - {name: amount_positive, criticality: error, check: {function: sql_expression, arguments: {expression: "amount > 0"}}}
      - {name: amount_small, criticality: warn, check: {function: is_not_greater_than, arguments: {column: amount, limit: 10}}}
"""


@pytest.mark.parametrize("on_error", ["drop", "fail"])
def test_framework_enforces_drop_and_fail_where_the_runtime_has_no_expectations(spark, tmp_path, on_error):
    from tests.conftest import write_project
    from tests.spark.harness import CHECKED_MODULES, checked_config

    config = write_project(tmp_path, checked_config(on_error, ON_ERROR_CHECKS).replace("SCHEMA", "reg_modes"),
                           CHECKED_MODULES)
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("id,amount\n1,5\n2,-1\n3,50\n")
    _, registry = register(spark, config)
    assert "clean_quarantine" not in registry.outputs
    _materialize_as_views(spark, {n: registry.flows[n] for n in ("raw", "clean__checked")})
    clean = registry.flows["clean"].func()
    if on_error == "drop":
        kept = {r["id"]: [w["name"] for w in r["_warnings"] or []] for r in clean.collect()}
        assert kept == {1: [], 3: ["amount_small"]} and "_errors" not in clean.columns
    else:
        with pytest.raises(Exception, match="table clean: a row failed error-level check.s. amount_positive"):
            clean.collect()


def test_a_pipelines_configuration_gives_config_yml_its_variables_on_databricks_and_in_the_sdp_driver(
        spark, example_project):
    """`--var` reaches the local SDP driver as the spec's `ldp.var.NAME` entries; a Databricks pipeline's
    `configuration:` passes them the same way (the bundle sets `ldp.var.env_name: ${bundle.target}`)."""
    from types import SimpleNamespace

    from pipelines.core.config import load_config
    from pipelines.core.variables import Overrides
    from pipelines.engine.entry import register_pipeline
    from pipelines.engine.sdp_driver import load_registrar
    from pipelines.ldp.sdp import SdpRun

    config_file = example_project / "config.yml"
    config_file.write_text(config_file.read_text().replace(
        "comment: Customers per country.", "comment: \"gold of ${var.env_name}\"", 1))
    project = load_project(load_config(config_file, Overrides.parse(("env_name=staging",))))
    spec = SdpRun(project.plan, config_file, example_project / ".ldp", Path("driver.py")).spec()
    assert spec["configuration"]["ldp.var.env_name"] == "staging"
    registrar = load_registrar(spark, SimpleNamespace(configuration=spec["configuration"]), ["customers_gold"])
    assert registrar.plan.config.table("customers_gold").comment == "gold of staging"

    with pipeline_configuration(spark, {"ldp.config": str(config_file), "ldp.var.env_name": "prod"}):
        registry = CapturingRegistry()
        with graph_element_registration_context(registry):
            register_pipeline(spark, databricks_dp(registry))
        assert registry.outputs["customers_gold"].comment == "gold of prod"


SINKS_CONFIG = """
pipeline: {schema: reg_sinks, transformations: ./transformations}
tables:
  - name: events
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT, amount INT", options: {header: true}}
    expectations:
      - {name: has_amount, criticality: warn, check: {function: is_not_null, arguments: {column: amount}}}
    sinks:
      - {type: delta, table: copies.events_log, mode: append}
      - {type: delta, path: ./copies/merged, mode: merge, keys: [id]}
      - {type: kafka, bootstrap_servers: 'broker:9092', topic: events_out, key: "concat('e-', id)"}
      - {type: python, module: audit}
"""
SINKS_MODULES = {"bronze/events.py": "def events(source):\n    return source\n",
                 "sinks/audit.py": "CALLS = []\n\n\ndef write(batch_df, batch_id):\n"
                                   "    CALLS.append((batch_df.columns, batch_df.count(), batch_id))\n"}


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_on_databricks_a_streaming_tables_sinks_are_the_pipelines_own_sinks_fed_by_append_flows(
        spark, tmp_path, mode):
    """Lakeflow delivers a streaming table's sinks itself, each from an append flow over the table's new
    rows (without DQX's columns): an `append` Delta copy and Kafka through `dp.create_sink`, a python
    sink through `foreach_batch_sink` (Spark's batch id); the run's id is the pipeline's update id. A
    `merge` copy, and a materialized view's sinks, stay with the job's `sinks publish` task; open-source
    SDP has no `foreach_batch_sink` (the local runners write every sink after the table)."""
    from tests.conftest import write_project

    config = write_project(tmp_path, SINKS_CONFIG, SINKS_MODULES)
    (tmp_path / "in").mkdir()
    spark.conf.set("spark.pipelines.updateId", "update-42")
    sinks: list[tuple[str, dict]] = []
    handlers: list[tuple[str, Callable]] = []

    def on_databricks(registry: CapturingRegistry) -> types.SimpleNamespace:
        api = databricks_dp(registry)
        api.foreach_batch_sink = lambda name: lambda handler: handlers.append((name, handler))
        api.create_sink = lambda **kwargs: sinks.append(("create_sink", kwargs))
        return api

    try:
        project, registry = register(spark, config, mode=mode, api=on_databricks)
    finally:
        spark.conf.unset("spark.pipelines.updateId")
    sink_flows = {target: flow for target, flow in registry.flows.items() if "__sink_" in target}
    if mode == "batch":  # a materialized view is rewritten whole: its sinks are published after the update
        assert (sinks, handlers, sink_flows) == ([], [], {})
        return
    log, kafka, audit = ("events__sink_delta_copies_events_log", "events__sink_kafka_events_out_on_broker_9092",
                         "events__sink_python_sinks_audit_py_write")
    assert sinks == [
        ("create_sink", {"name": log, "format": "delta", "options": {"tableName": "copies.events_log"}}),
        ("create_sink", {"name": kafka, "format": "kafka", "options": {
            "kafka.enable.idempotence": "true", "kafka.acks": "all", "kafka.bootstrap.servers": "broker:9092",
            "topic": "events_out"}})]
    assert [name for name, _ in handlers] == [audit]
    assert {target: flow.name for target, flow in sink_flows.items()} == {
        log: f"{log}_flow", kafka: f"{kafka}_flow", audit: f"{audit}_flow"}

    spark.readStream.format("rate").load().selectExpr("CAST(value AS INT) AS id", "1 AS amount",
                                                      "CAST(NULL AS STRING) AS _warnings"
                                                      ).createOrReplaceTempView("events")  # the pipeline's
    try:
        streams = {target: flow.func() for target, flow in sink_flows.items()}
    finally:
        spark.catalog.dropTempView("events")
    assert all(stream.isStreaming for stream in streams.values())
    assert streams[log].columns == ["id", "amount", "_ldp_run_id"]  # no DQX column; tagged with the update
    assert "update-42" in streams[log]._jdf.queryExecution().analyzed().toString()
    assert streams[kafka].columns == ["key", "value", "headers"] and streams[audit].columns == ["id", "amount"]
    [(_, handler)] = handlers
    handler(spark.createDataFrame([(1, 10)], "id INT, amount INT"), 7)
    audit_module = sys.modules[project.sink_functions["audit.write"].__module__]
    assert audit_module.CALLS == [(["id", "amount"], 1, 7)]  # Spark's batch id

    _, oss = register(spark, config, mode=mode, api=lambda registry: dp)  # open-source SDP: no sink flow
    assert not [target for target in oss.flows if "__sink_" in target]
