"""The Spark runner on real local Spark: writes, failures, rewrites, streaming, parallelism."""
from __future__ import annotations

import threading

import pytest
from chispa import assert_df_equality

from pipelines.catalog.reader import stored_table
from pipelines.core.errors import RunError
from pipelines.core.graph import Selection
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
                               "def clean(raw):\n    return raw.withColumn('amount', F.raise_error(F.lit('boom')).cast('int'))\n"})
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


SLOW_PYTHON = "import time\ndef clean(raw):\n    time.sleep(40)\n    return raw\n"


def test_a_table_past_its_timeout_fails_skips_downstream_and_writes_nothing(harness, spark):
    import time

    harness.run()
    before = harness.table("clean").collect()
    modules = dict(MODULES, **{"silver/clean.py": SLOW_PYTHON})
    slow = Harness(spark, harness.root, modules)
    slow.schema = harness.schema
    slow.path = write_project(harness.root, project_config(harness.schema), modules)
    started = time.perf_counter()
    commits = len(stored_table(harness.catalog, harness.schema, "clean").history())
    tables, result = slow.run(Selection(exclude=("raw",)), table_timeout=15)
    assert time.perf_counter() - started < 35  # the runner does not wait for the slow table
    assert result.status == "failed"
    assert tables["clean"].status == "failed" and "timed out after 15 s" in tables["clean"].error
    assert tables["report"].status == "skipped" and "upstream table 'clean' failed" in tables["report"].error
    assert tables["other"].status == "success"
    # the abandoned thread wakes up and writes: that version must not reach the catalog
    while any(thread.name.startswith("ldp") for thread in threading.enumerate()):
        time.sleep(0.2)
    # the abandoned table was refused before its write: no new Delta version
    assert len(stored_table(harness.catalog, harness.schema, "clean").history()) == commits
    spark.catalog.refreshTable(f"{harness.schema}.clean")
    assert_df_equality(harness.table("clean"), spark.createDataFrame(before, harness.table("clean").schema),
                       ignore_row_order=True)
    assert ("finished", "clean") not in slow.events and slow.events.count(("failed", "clean")) == 1


def test_a_concurrent_reader_never_sees_an_empty_partial_or_mixed_version(harness, spark):
    """While the runner rewrites a table a few times, a reader polling it (row count and checksum)
    sees exactly one whole version each time: the swap is one catalog change, and the version it
    replaces stays on disk until the next write, so a read planned just before a swap completes."""
    import time
    from pyspark.sql import functions as F

    days = [[(i, i) for i in range(1, 40)], [(i, 2 * i) for i in range(1, 60)], [(i, 3 * i) for i in range(1, 80)]]
    whole_versions = {(3, 12)} | {(len(rows), sum(amount for _, amount in rows)) for rows in days}  # (3, 12): day1
    harness.run()
    seen, errors, stop = [], [], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                spark.catalog.refreshTable(f"{harness.schema}.raw")
                row = harness.table("raw").agg(F.count("*").alias("n"), F.sum("amount").alias("s")).first()
                seen.append((row["n"], row["s"]))
            except Exception as exc:  # noqa: BLE001 - any failed read is a broken guarantee
                errors.append(str(exc).splitlines()[0])

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for day, rows in enumerate(days * 2):
            for old in (harness.root / "in").iterdir():
                old.unlink()
            add_file(harness.root, f"day{day}.csv", rows)
            tables, _ = harness.run(Selection(select=("raw",)))
            assert tables["raw"].status == "success"
            time.sleep(0.5)
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert len(seen) > 10 and set(seen) <= whole_versions, set(seen)
