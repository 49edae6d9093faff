"""`type: delta` sinks: a copy of the table in another Delta table, by name or at a path, written after
the table in one commit per sink: `replace` mirrors it, `append` adds each run's rows once (a retried run
replaces its own), `merge` upserts by key; a failed sink leaves its copy and the table as they were."""
from __future__ import annotations

from pathlib import Path

from pipelines.catalog.sinks import SinkRun
from pipelines.consumers.sinks import TableSinks
from pipelines.core.seam import Consumers
from tests.spark.harness import Harness

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: scores
    layer: silver
    source: {type: table, table: scores_src}
    sinks:
      - {type: delta, path: ./copies/mirror}
      - {type: delta, table: SCHEMA.scores_log, mode: append}
      - {type: delta, path: ./copies/merged, mode: merge, keys: [id]}
"""
MODULES = {"silver/scores.py": "def scores(source):\n    return source\n"}


def run(harness: Harness, run_id: str):
    consumers = Consumers([TableSinks(SinkRun(run_id, base_dir=harness.root))], run_id=run_id)
    return harness.run(consumers=consumers)


def rows(df, *columns: str) -> list[tuple]:
    return sorted(tuple(r) for r in df.select(*columns).collect())


def test_replace_append_and_merge_copies_over_runs_and_a_retried_run(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    copy = lambda name: spark.read.format("delta").load(str(tmp_path / "copies" / name))  # noqa: E731
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    tables, result = run(harness, "r1")
    assert result.succeeded, tables["scores"].to_dict()
    assert [(s["type"], s["mode"], s["rows"], s["status"]) for s in tables["scores"].sinks] == [
        ("delta", "replace", 2, "success"), ("delta", "append", 2, "success"), ("delta", "merge", 2, "success")]
    assert tables["scores"].sinks[0]["target"] == "./copies/mirror"

    spark.createDataFrame([(2, "B"), (3, "c")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    for _ in range(2):  # the second is a retry of the run (its id quoted in replaceWhere): no copy changes
        tables, result = run(harness, "r'2")
        assert result.succeeded, tables["scores"].to_dict()
        assert rows(copy("mirror"), "id", "name") == [(2, "B"), (3, "c")]
        assert rows(spark.table(f"{harness.schema}.scores_log"), "_ldp_run_id", "id", "name") == [
            ("r'2", 2, "B"), ("r'2", 3, "c"), ("r1", 1, "a"), ("r1", 2, "b")]
        assert rows(copy("merged"), "id", "name") == [(1, "a"), (2, "B"), (3, "c")]  # merge never deletes
        assert tables["scores"].sinks[2]["rows"] == 2  # one row updated, one inserted


def test_a_failed_delta_sink_leaves_its_copy_and_the_table_and_fails_the_run(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    spark.createDataFrame([(1, "a")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {harness.schema}")
    spark.createDataFrame([("x", 7)], "id STRING, other INT").write.format("delta").saveAsTable(
        f"{harness.schema}.scores_log")  # a copy whose columns the table's rows cannot fill
    tables, result = run(harness, "r1")
    [mirror, log, merged] = tables["scores"].sinks
    assert (mirror["status"], log["status"], merged["status"]) == ("success", "failed", "success")
    assert "scores_log" in log["target"] and "DELTA_FAILED_TO_MERGE_FIELDS" in log["error"], log["error"]
    assert not result.succeeded and tables["scores"].succeeded  # the table is written, the run fails
    assert rows(harness.table("scores"), "id", "name") == [(1, "a")]
    assert rows(spark.table(f"{harness.schema}.scores_log"), "id", "other") == [("x", 7)]  # as it was
    assert Path(tmp_path / "copies" / "mirror" / "_delta_log").is_dir()
