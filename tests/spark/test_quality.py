"""DQX expectations enforced by the Spark runner: quarantine, drop, fail; metrics; nothing lost."""
from __future__ import annotations

import pytest

from tests.spark.harness import CHECKED_MODULES as MODULES
from tests.spark.harness import Harness, checked_config as config

ROWS = "id,amount,email\n1,10,a@x.com\n2,-5,b@x.com\n,7,c@x.com\n4,3000,bad\n5,1,e@x.com\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text(ROWS)
    return tmp_path


def ids(df) -> set:
    return {row["id"] for row in df.collect()}


def failed_counts(result) -> dict[str, int]:
    return {c.name: c.failed for c in result.checks}


def test_quarantine_splits_rows_disjointly_and_completely(spark, project):
    harness = Harness(spark, project, MODULES, config=config("quarantine"))
    tables, run = harness.run()
    assert run.status == "success"
    clean = tables["clean"]
    assert (clean.rows_written, clean.rows_quarantined, clean.rows_dropped) == (3, 2, 0)
    assert failed_counts(clean) == {"id_present": 1, "amount_positive": 1, "amount_small": 2, "email_valid": 1}
    assert {c.criticality for c in clean.checks} == {"error", "warn"}
    main, quarantine = harness.table("clean"), harness.table("clean_quarantine")
    assert ids(main) == {1, 4, 5} and ids(quarantine) == {2, None}
    assert main.count() + quarantine.count() == 5  # nothing lost, nothing duplicated
    assert "_errors" not in main.columns and "_warnings" in main.columns
    reasons = {r["id"]: sorted(e["name"] for e in r["_errors"]) for r in quarantine.collect()}
    assert reasons == {2: ["amount_positive"], None: ["id_present"]}
    warned = {r["id"]: sorted(w["name"] for w in r["_warnings"] or []) for r in main.collect()}
    assert warned == {1: [], 4: ["amount_small", "email_valid"], 5: []}
    # downstream sees the business columns only, and only the valid rows
    assert harness.table("report").first()["count"] == 3


def test_rerun_replaces_both_tables(spark, project):
    harness = Harness(spark, project, MODULES, config=config("quarantine"))
    harness.run()
    (project / "in" / "rows.csv").write_text("id,amount,email\n1,10,a@x.com\n")
    tables, _ = harness.run()
    assert harness.table("clean").count() == 1 and harness.table("clean_quarantine").count() == 0
    assert tables["clean"].rows_quarantined == 0


def test_drop_discards_error_rows_but_counts_them(spark, project):
    harness = Harness(spark, project, MODULES, config=config("drop"))
    tables, _ = harness.run()
    assert (tables["clean"].rows_written, tables["clean"].rows_dropped, tables["clean"].rows_quarantined) == (3, 2, 0)
    assert ids(harness.table("clean")) == {1, 4, 5}
    assert not spark.catalog.tableExists(f"{harness.schema}.clean_quarantine")


def test_fail_fails_the_table_and_keeps_the_previous_version(spark, project):
    rows = project / "in" / "rows.csv"
    rows.write_text("id,amount,email\n1,10,a@x.com\n")
    harness = Harness(spark, project, MODULES, config=config("fail"))
    tables, _ = harness.run()
    assert tables["clean"].status == "success" and harness.table("clean").count() == 1
    rows.write_text(ROWS)
    tables, run = harness.run()
    assert run.status == "failed" and tables["clean"].status == "failed"
    assert "2 row(s) failed error-level checks (id_present: 1, amount_positive: 1)" in tables["clean"].error
    assert tables["report"].status == "skipped"
    assert harness.table("clean").count() == 1  # previous version still readable


def test_check_on_a_missing_column_fails_before_writing(spark, project):
    checks = "\n      - {name: c, check: {function: is_not_null, arguments: {column: colour}}}\n"
    harness = Harness(spark, project, MODULES, config=config("quarantine", checks))
    tables, _ = harness.run()
    assert tables["clean"].status == "failed"
    assert "check #1 'c' names column 'colour', which the table does not have" in tables["clean"].error
    assert not spark.catalog.tableExists(f"{harness.schema}.clean")


def test_checks_that_do_not_resolve_fail_before_writing_naming_each_check(spark, project):
    checks = ("\n      - {name: ok, check: {function: is_not_null, arguments: {column: id}}}"
              "\n      - {name: bad_expression, check: {function: sql_expression, arguments: {expression: 'colour > 1'}}}"
              "\n      - {name: bad_filter, filter: 'size > 2', check: {function: is_not_null, arguments: {column: id}}}\n")
    unsafe = "\n      - {name: unsafe, filter: 'id > 0 /* drop */', check: {function: is_not_null, arguments: {column: id}}}\n"
    harness = Harness(spark, project, MODULES, config=config("quarantine", checks))
    tables, _ = harness.run()
    error = tables["clean"].error
    assert tables["clean"].status == "failed"
    assert "check 'bad_expression' cannot be evaluated" in error and "colour" in error
    assert "check 'bad_filter' cannot be evaluated" in error and "size" in error
    assert "check 'ok'" not in error
    assert not spark.catalog.tableExists(f"{harness.schema}.clean")
    harness = Harness(spark, project, MODULES, config=config("quarantine", unsafe))
    tables, _ = harness.run()
    assert "check 'unsafe' cannot be evaluated: unsafe filter 'id > 0 /* drop */'" in tables["clean"].error


def test_duplicate_check_names_fail_the_table(spark, project):
    checks = ("\n      - {check: {function: is_not_null, arguments: {column: id}}}"
              "\n      - {check: {function: is_not_null, for_each_column: [id, email]}}\n")
    harness = Harness(spark, project, MODULES, config=config("quarantine", checks))
    tables, _ = harness.run()
    assert "several checks are named 'id_is_null'" in tables["clean"].error


def test_streaming_table_with_checks_quarantines_each_new_file(spark, project):
    streaming = config("quarantine").replace("  - name: raw\n    layer: bronze\n    source:",
                            "  - name: raw\n    layer: bronze\n    on_error: quarantine\n    expectations:"
                            "\n      - {name: id_present, check: {function: is_not_null, arguments: {column: id}}}"
                            "\n    source:")
    harness = Harness(spark, project, MODULES, config=streaming)
    tables, run = harness.run(mode="streaming")
    assert run.status == "success", [t.error for t in tables.values()]
    assert (tables["raw"].rows_written, tables["raw"].rows_quarantined) == (4, 1)
    tables, _ = harness.run(mode="streaming")
    assert (tables["raw"].rows_written, tables["raw"].rows_quarantined) == (0, 0)
    (project / "in" / "more.csv").write_text("id,amount,email\n,1,z@x.com\n9,2,y@x.com\n")
    tables, _ = harness.run(mode="streaming")
    assert (tables["raw"].rows_written, tables["raw"].rows_quarantined) == (1, 1)
    assert harness.table("raw").count() == 5 and harness.table("raw_quarantine").count() == 2
