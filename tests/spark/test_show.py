"""`ldp_engine show`: any local table (the pipeline's, quarantine, schema.table) as text or JSON, with
--where, --columns and --limit; unknown tables and bad filters get clear errors and exit codes."""
from __future__ import annotations

import json

from click.testing import CliRunner

from pipelines.engine.cli import cli

from .harness import CHECKED_MODULES, Harness, checked_config

ROWS = "id,amount,email\n1,10,a@x.com\n2,-5,b@x.com\n,7,c@x.com\n4,3000,bad\n5,1,e@x.com\n"


def checked(spark, root) -> Harness:
    (root / "in").mkdir()
    (root / "in" / "rows.csv").write_text(ROWS)
    harness = Harness(spark, root, CHECKED_MODULES, config=checked_config("quarantine"))
    assert harness.run()[1].status == "success"
    return harness


def show(harness: Harness, *args: str):
    return CliRunner().invoke(cli, ["show", *args, "--config", str(harness.path),
                                    "--state-dir", str(harness.catalog)])


def test_show_prints_a_table_and_its_quarantine_rows(spark, tmp_path):
    harness = checked(spark, tmp_path)

    result = show(harness, "clean", "--format", "json", "--columns", "id,amount", "--where", "amount > 5")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["table"] == f"{harness.schema}.clean" and shown["columns"] == ["id", "amount"]
    assert sorted(r["id"] for r in shown["rows"]) == sorted(
        r["id"] for r in harness.table("clean").where("amount > 5").collect())

    assert shown["reader"] == "files" and shown["run"] is None  # no JVM; the harness keeps no run records
    quarantined = json.loads(show(harness, f"{harness.schema}.clean_quarantine", "--format", "json").stdout)
    assert quarantined["reader"] == "files"
    by_spark = [json.loads(json.dumps(r.asDict(recursive=True), default=str))
                for r in harness.table("clean_quarantine").collect()]
    assert sorted(quarantined["rows"], key=str) == sorted(by_spark, key=str)  # values as Spark gives them
    assert len(quarantined["rows"]) == 2  # id missing, amount negative
    assert all(r["_errors"] and r["_errors"][0]["name"] for r in quarantined["rows"])  # reasons, as stored

    text = show(harness, "clean", "--limit", "1").stdout
    assert text.splitlines()[0].split()[:2] == ["id", "amount"] and text.rstrip().endswith("(1 row(s))")


def test_an_unknown_table_or_a_bad_filter_is_a_clear_error(spark, tmp_path):
    harness = checked(spark, tmp_path)
    missing = show(harness, "claen", "--format", "json")
    assert missing.exit_code == 1
    [error] = json.loads(missing.stdout)["errors"]
    assert f"table {harness.schema}.claen does not exist" in error and "clean_quarantine" in error
    bad = show(harness, "clean", "--where", "no_such_column > 1")
    assert bad.exit_code == 2 and "no_such_column" in bad.output and "Traceback" not in bad.output
    spark_sql = json.loads(show(harness, "clean", "--format", "json", "--where", "email rlike '^ba'").stdout)
    assert spark_sql["reader"] == "spark" and [r["id"] for r in spark_sql["rows"]] == [4]  # DuckDB lacks rlike
