"""The Spark runner on real local Spark: writes, failures, rewrites, streaming, parallelism."""
from __future__ import annotations

import threading

import pytest
from chispa import assert_df_equality

from pipelines.engine.errors import RunError
from pipelines.engine.graph import Selection
from tests.conftest import write_project
from tests.spark.harness import MODULES, Harness, add_file, project_config

@pytest.fixture
def harness(spark, tmp_path):
    add_file(tmp_path, "day1.csv", [(1, 10), (2, -5), (3, 7)])
    return Harness(spark, tmp_path)


def test_batch_run_writes_every_table_with_row_counts(harness, spark):
    tables, result = harness.run()
    assert result.status == "success"
    assert {n: t.rows_written for n, t in tables.items()} == {"raw": 3, "clean": 2, "other": 3, "report": 1}
    assert_df_equality(harness.table("report"), spark.createDataFrame([(17,)], "total long"),
                       ignore_nullable=True)
    described = {r.col_name: r.data_type for r in spark.sql(f"DESCRIBE TABLE EXTENDED {harness.schema}.clean").collect()}
    assert described["Comment"] == "only positive" and "team=data-eng" in described["Table Properties"]
    assert spark.sql(f"SHOW PARTITIONS {harness.schema}.clean").count() == 2
    # a rerun recomputes: same counts, no duplicates
    tables, _ = harness.run()
    assert tables["raw"].rows_written == 3 and harness.table("raw").count() == 3


def test_failed_table_skips_downstream_but_independent_branch_finishes(harness):
    modules = dict(MODULES, **{"silver/clean.py": "def clean(raw):\n    raise ValueError('bad logic')\n"})
    failing = Harness(harness.spark, harness.root, modules)
    tables, result = failing.run()
    assert result.status == "failed"
    assert tables["clean"].status == "failed" and "ValueError: bad logic" in tables["clean"].error
    assert tables["report"].status == "skipped" and "upstream table 'clean' failed" in tables["report"].error
    assert tables["other"].status == "success" and tables["raw"].status == "success"
    assert ("skipped", "report") in failing.events


def test_fail_fast_starts_nothing_after_the_first_failure(harness):
    modules = dict(MODULES, **{"bronze/raw.py": "def raw(source):\n    raise RuntimeError('no')\n"})
    failing = Harness(harness.spark, harness.root, modules)
    tables, _ = failing.run(fail_fast=True)
    assert tables["raw"].status == "failed"
    assert {tables[n].status for n in ("clean", "other", "report")} == {"skipped"}


def test_spark_error_during_write_keeps_the_previous_table_readable(harness, spark):
    harness.run()
    before = harness.table("clean").collect()
    modules = dict(MODULES, **{"silver/clean.py":
                               "from pyspark.sql import functions as F\n"
                               "def clean(raw):\n    return raw.withColumn('amount', F.raise_error(F.lit('boom')))\n"})
    broken = Harness(spark, harness.root, modules)
    broken.schema = harness.schema
    broken.path = write_project(harness.root, project_config(harness.schema), modules)
    tables, _ = broken.run(Selection(select=("clean",)))
    assert tables["clean"].status == "failed" and "boom" in tables["clean"].error
    assert sorted(harness.table("clean").collect()) == sorted(before)


def test_rejected_table_property_keeps_the_previous_table(harness, spark):
    harness.run()
    bad = Harness(spark, harness.root)
    bad.schema = harness.schema
    bad.path = write_project(harness.root, project_config(harness.schema).replace(
        "team: data-eng", "owner: someone"), MODULES)
    tables, _ = bad.run(Selection(select=("clean",)))
    assert tables["clean"].status == "failed" and "owner is a reserved table property" in tables["clean"].error
    assert harness.table("clean").count() == 2


def test_rejected_property_on_an_unpartitioned_table_keeps_its_data(harness, spark):
    harness.run()
    before = sorted(harness.table("other").collect())
    add_file(harness.root, "day2.csv", [(9, 9)])
    bad = Harness(spark, harness.root)
    bad.schema = harness.schema
    bad.path = write_project(harness.root, project_config(harness.schema).replace(
        "  - {name: other, layer: silver, depends_on: [raw]}",
        "  - {name: other, layer: silver, depends_on: [raw], table_properties: {owner: x}}"), MODULES)
    tables, _ = bad.run(Selection(select=("other",)))
    assert tables["other"].status == "failed" and "owner is a reserved table property" in tables["other"].error
    assert sorted(harness.table("other").collect()) == before


def test_non_dataframe_result_fails_the_table(harness):
    modules = dict(MODULES, **{"silver/other.py": "def other(raw):\n    return 42\n"})
    tables, _ = Harness(harness.spark, harness.root, modules).run()
    assert "returned int, expected a DataFrame" in tables["other"].error


def test_upstream_outside_the_selection_is_read_from_the_catalog(harness):
    harness.run()
    tables, result = harness.run(Selection(select=("report",)))
    assert result.status == "success" and list(tables) == ["report"]


def test_missing_upstream_outside_the_selection_says_how_to_widen_it(spark, tmp_path):
    add_file(tmp_path, "day1.csv", [(1, 1)])
    fresh = Harness(spark, tmp_path)
    with pytest.raises(RunError) as caught:
        fresh.run(Selection(select=("report",)))
    message = caught.value.render()
    assert "upstream table 'clean' is outside the selection and does not exist" in message
    assert "--select +report" in message


def test_tables_start_as_soon_as_their_own_inputs_are_done(spark, tmp_path):
    add_file(tmp_path, "day1.csv", [(1, 1)])
    gate = threading.Event()
    modules = dict(MODULES, **{
        # `other` blocks until `report` (which needs clean, not other) has been computed
        "silver/other.py": "import tests.spark.test_runner as t\n"
                           "def other(raw):\n    assert t.GATE.wait(60)\n    return raw\n",
        "gold/report.py": "import tests.spark.test_runner as t\n"
                          "def report(clean):\n    t.GATE.set()\n    return clean\n"})
    global GATE
    GATE = gate
    tables, result = Harness(spark, tmp_path, modules).run(max_parallel=2)
    assert result.status == "success"


def test_streaming_appends_only_new_files_and_downstream_follows(harness, spark):
    tables, _ = harness.run(mode="streaming")
    assert tables["raw"].rows_written == 3 and tables["report"].rows_written == 1
    tables, _ = harness.run(mode="streaming")
    assert tables["raw"].rows_written == 0 and harness.table("raw").count() == 3
    add_file(harness.root, "day2.csv", [(4, 100), (5, -1)])
    tables, _ = harness.run(mode="streaming")
    assert tables["raw"].rows_written == 2 and harness.table("raw").count() == 5
    assert harness.table("report").first()["total"] == 117
    # batch rewrites the table and resets the stream; the next streaming run rebuilds, no duplicates
    harness.run(mode="batch")
    tables, _ = harness.run(mode="streaming")
    assert tables["raw"].rows_written == 5 and harness.table("raw").count() == 5
