"""Schema contracts on real Spark: the Spark runner's eager check, the pipeline's lazy guard, and what the
registrar hands the pipeline (`schema=`, masks and row filters on Databricks)."""
from __future__ import annotations

import inspect
import logging
import types

import pytest
from pyspark import pipelines as dp
from pyspark.pipelines.graph_element_registry import graph_element_registration_context

from pipelines.engine.render import summary_text
from pipelines.core.graph import Selection
from pipelines.ldp.registrar import Registrar
from pipelines.engine.project import load_project
from tests.conftest import write_project
from tests.spark.harness import Harness, add_file
from tests.spark.test_registrar import CapturingRegistry, databricks_dp, register

CLEAN = "def clean(raw):\n    return raw\n"
CONFIG = """
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source: {{type: files, format: csv, path: ./in, options: {{header: true, inferSchema: true}}}}
  - name: clean
    layer: silver
    depends_on: [raw]
    contract: {contract}
    columns:
      - {{name: amount, type: integer, comment: "Cents, positive."}}
      - {{name: id, type: int, nullable: false}}
  - {{name: report, layer: gold, depends_on: [clean]}}
"""
MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n", "silver/clean.py": CLEAN,
           "gold/report.py": "def report(clean):\n    return clean.groupBy().count()\n"}


def project(spark, root, contract: str = "enforced", clean: str = CLEAN) -> Harness:
    add_file(root, "day1.csv", [(1, 10), (2, 5)])
    return Harness(spark, root, dict(MODULES, **{"silver/clean.py": clean}), config=CONFIG.format(contract=contract))


def rewrite(harness: Harness, clean: str, contract: str = "enforced") -> None:
    """The same project (schema, tables) with another `clean` transformation."""
    write_project(harness.root, CONFIG.format(contract=contract).replace("SCHEMA", harness.schema),
                  dict(MODULES, **{"silver/clean.py": clean}))


def test_a_kept_contract_writes_the_declared_columns_in_order_with_their_comments(spark, tmp_path):
    harness = project(spark, tmp_path)
    tables, result = harness.run()
    assert result.status == "success", tables["clean"].error
    assert harness.table("clean").columns == ["amount", "id"]
    described = {r.col_name: r.comment for r in spark.sql(f"DESCRIBE TABLE {harness.schema}.clean").collect()}
    assert described["amount"] == "Cents, positive." and described["id"] is None


def test_a_broken_contract_fails_the_table_naming_each_column_and_writes_nothing(spark, tmp_path):
    harness = project(spark, tmp_path)
    harness.run()
    before = sorted(harness.table("clean").collect())
    rewrite(harness, "from pyspark.sql import functions as F\n"
                     "def clean(raw):\n    return raw.select(F.col('id').cast('string').alias('id'), "
                     "F.lit('x').alias('note'))\n")
    tables, result = harness.run()
    error = tables["clean"].error
    assert tables["clean"].status == "failed" and tables["report"].status == "skipped"
    assert "column amount is missing (declared int)" in error
    assert "column id is string, declared int" in error
    assert "column note (string) is not declared" in error
    assert "table 'clean'" in error and "breaks its contract (enforced)" in error
    assert sorted(harness.table("clean").collect()) == before


def test_a_null_where_the_contract_forbids_it_fails_the_write_and_keeps_the_previous_version(spark, tmp_path):
    harness = project(spark, tmp_path)
    harness.run()
    before = sorted(harness.table("clean").collect())
    rewrite(harness, "from pyspark.sql import functions as F\n"
                     "def clean(raw):\n    return raw.withColumn('id', F.when(F.col('amount') > 5, F.col('id')))\n")
    tables, _ = harness.run(Selection(select=("clean",)))
    assert tables["clean"].status == "failed"
    assert "NULL in column(s) declared nullable: false: id" in tables["clean"].error
    assert sorted(harness.table("clean").collect()) == before


def test_an_additive_contract_lets_new_columns_through_and_reports_them(spark, tmp_path, caplog):
    harness = project(spark, tmp_path, "additive", "from pyspark.sql import functions as F\n"
                      "def clean(raw):\n    return raw.withColumn('note', F.lit('x'))\n")
    with caplog.at_level(logging.WARNING, logger="pipelines.quality.contract"):
        tables, result = harness.run()
    assert result.status == "success", tables["clean"].error
    assert harness.table("clean").columns == ["amount", "id", "note"]
    assert "table clean: column(s) note are new (not in columns:)" in caplog.text
    assert tables["clean"].new_columns == ["note"] and tables["clean"].to_dict()["new_columns"] == ["note"]
    assert "New columns:\n  clean: note (not in columns:" in summary_text(result)


def test_the_pipeline_guard_gives_the_same_verdict_without_reading_the_schema(spark, tmp_path):
    """Inside a pipeline the query may not read its schema: the registered flow fails on its first row."""
    harness = project(spark, tmp_path, clean="from pyspark.sql import functions as F\n"
                      "def clean(raw):\n    return raw.select(F.col('id').cast('string').alias('id'), "
                      "F.col('amount'), F.lit('x').alias('note'))\n")
    spark.read.option("header", True).option("inferSchema", True).csv(str(tmp_path / "in")) \
        .createOrReplaceTempView("raw")
    _, registry = register(spark, harness.path)
    with pytest.raises(Exception) as failure:
        registry.flows["clean"].func().collect()
    message = str(failure.value)
    assert "table clean breaks its contract (enforced): column id is string, declared int" in message
    assert "columns not declared: struct<note:string>" in message
    rewrite(harness, "from pyspark.sql import functions as F\n"
                     "def clean(raw):\n    return raw.withColumn('id', F.when(F.col('amount') > 5, F.col('id')))\n")
    _, registry = register(spark, harness.path)
    with pytest.raises(Exception, match=r"NULL in column\(s\) declared nullable: false: id"):
        registry.flows["clean"].func().collect()


def test_the_pipeline_guard_fails_a_broken_contract_without_rows_and_costs_nothing_when_kept(spark, tmp_path):
    """No row to fail on: the one-row branch carries the verdict, and a kept contract's plan has no branch."""
    harness = project(spark, tmp_path, clean="from pyspark.sql import functions as F\n"
                      "def clean(raw):\n    return raw.where('1 = 0').select(F.col('id').cast('string').alias('id'), "
                      "F.col('amount'))\n")
    spark.read.option("header", True).option("inferSchema", True).csv(str(tmp_path / "in")) \
        .createOrReplaceTempView("raw")
    _, registry = register(spark, harness.path)
    with pytest.raises(Exception, match="table clean breaks its contract \\(enforced\\): column id is string, "
                                        "declared int"):
        registry.flows["clean"].func().collect()
    rewrite(harness, "def clean(raw):\n    return raw.where('1 = 0')\n")
    _, registry = register(spark, harness.path)
    kept = registry.flows["clean"].func()
    assert kept.collect() == []
    plan = kept._jdf.queryExecution().optimizedPlan().toString()
    assert "__ldp_contract_guard" not in plan and "raise_error" not in plan


def test_the_pipeline_gets_the_declared_schema_with_the_quality_columns(spark, example_project):
    _, registry = register(spark, example_project / "config.yml")
    silver = registry.outputs["customers_silver"].schema
    assert silver.startswith("`customer_id` string COMMENT 'The source system\\'s customer key.', `name` string, ")
    assert silver.endswith(", `updated_at` timestamp, `_warnings` array<struct<name:string,message:string,"
                           "columns:array<string>,filter:string,function:string,run_time:timestamp,run_id:string,"
                           "user_metadata:map<string,string>,rule_fingerprint:string,rule_set_fingerprint:string,"
                           "skipped:boolean>>")
    quarantine = registry.outputs["customers_silver_quarantine"].schema
    assert ", `_errors` array<struct<" in quarantine and ", `_warnings` array<struct<" in quarantine
    assert registry.outputs["customers_gold"].schema is None  # additive: new columns may come
    assert registry.outputs["orders_silver"].schema is None  # no contract


def test_databricks_gets_column_masks_and_the_row_filter(spark, tmp_path):
    """Databricks' `dp.materialized_view` takes `row_filter`, and MASK in its schema, and the table keeps its
    declarations' digests for `plan --target databricks` (none here): the exact call."""
    calls: list[dict] = []

    def materialized_view(query_function=None, *, name=None, comment=None, spark_conf=None, table_properties=None,
                          partition_cols=None, cluster_by=None, schema=None, format=None, row_filter=None):
        calls.append({k: v for k, v in locals().items() if v is not None and k not in ("query_function", "calls")})
        return lambda function: None

    config = CONFIG.format(contract="enforced").replace(
        "{name: amount, type: integer, comment: \"Cents, positive.\"}",
        "{name: amount, type: integer, comment: \"Cents, positive.\", mask: governance.masks.cents}").replace(
        "    contract: enforced\n", "    contract: enforced\n    row_filter: governance.filters.by_id ON (id)\n")
    add_file(tmp_path, "day1.csv", [(1, 10)])
    path = write_project(tmp_path, config.replace("SCHEMA", "contracts_dbx"), MODULES)
    project_ = load_project(path)
    registry = CapturingRegistry()
    api = types.SimpleNamespace(**dict(vars(databricks_dp(registry)), materialized_view=materialized_view))
    assert "row_filter" in inspect.signature(api.materialized_view).parameters
    assert "row_filter" not in inspect.signature(dp.materialized_view).parameters  # open-source SDP has none
    with graph_element_registration_context(registry):
        Registrar(spark, project_.plan, project_.functions, api).register(
            [t for t in project_.plan.tables if t.name == "clean"])
    assert calls == [{"name": "clean", "schema": "`amount` int COMMENT 'Cents, positive.' MASK governance.masks.cents, "
                                                 "`id` int",
                      "row_filter": "ROW FILTER governance.filters.by_id ON (`id`)",
                      "table_properties": {"ldp_engine.declarations":
                                           '{"checks":{},"digests":true,"monitor":null,"sinks":{}}'}}]



def test_an_off_contract_applies_nothing_and_an_additive_one_may_declare_every_column(spark):
    from pipelines.core.config import TableConfig
    from pipelines.quality.contract import guarded

    df = spark.createDataFrame([(1, "a")], "id int, s string")
    off = TableConfig(name="t", layer="silver", contract="off", columns=[
        {"name": "missing", "type": "string"}, {"name": "s", "type": "string", "comment": "c"}])
    assert guarded(off, df, schema_checked=False).columns == ["id", "s"]
    assert guarded(off, df, schema_checked=False).schema["s"].metadata == {}
    additive = TableConfig(name="t", layer="silver", contract="additive", columns=[
        {"name": "s", "type": "string"}, {"name": "id", "type": "int"}])
    every = guarded(additive, df, schema_checked=False)
    assert every.columns == ["s", "id"] and every.collect() == [("a", 1)]
