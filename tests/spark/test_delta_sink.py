"""`type: delta` sinks: a copy of the table in another Delta table, by name or at a path, written after
the table in one commit per sink: `replace` mirrors it, `append` adds each run's rows once (a retried run
replaces its own), `merge` upserts by key; a failed sink leaves its copy and the table as they were."""
from __future__ import annotations

import json
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


STREAMING = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: events
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT, amount INT", options: {header: true}}
    sinks:
      - {type: delta, path: ./copies/mirror}
      - {type: delta, path: ./copies/log, mode: append}
      - {type: python, module: audit}
"""
AUDIT = ("import json, pathlib\n"
         "def write(batch_df, batch_id):\n"
         "    if (pathlib.Path(__file__).parent / 'FAIL').exists():\n"
         "        raise RuntimeError('the audit store is down')\n"
         "    with open(pathlib.Path(__file__).parent / 'calls.jsonl', 'a') as out:\n"
         "        out.write(json.dumps([batch_id, sorted(r['id'] for r in batch_df.collect())]) + '\\n')\n")


def test_a_streaming_tables_sinks_get_only_the_rows_they_have_not_had_but_a_replace_gets_the_table(spark, tmp_path):
    """As a Lakeflow sink's append flow: an append copy and a python sink see each row once over runs
    (the files the table's commits added since the version each sink last took, from its Delta log), a
    failed sink gets its rows again with the next run's; a `replace` mirror holds all."""
    from pipelines.catalog.sinks import SinkRun
    from pipelines.engine.project import load_project
    from tests.spark.harness import add_file

    harness = Harness(spark, tmp_path, {"bronze/events.py": "def events(source):\n    return source\n",
                                        "sinks/audit.py": AUDIT}, config=STREAMING)
    copy = lambda name: spark.read.format("delta").load(str(tmp_path / "copies" / name))  # noqa: E731

    def streaming_run(run_id: str):
        sinks = TableSinks(SinkRun(run_id, base_dir=harness.root, functions=load_project(harness.path).sink_functions,
                                   state=harness.root / ".ldp"))
        tables, result = harness.run(mode="streaming", consumers=Consumers([sinks], run_id=run_id))
        assert tables["events"].succeeded, tables["events"].to_dict()
        return [s["rows"] for s in tables["events"].sinks]

    fail = tmp_path / "transformations/sinks/FAIL"
    add_file(tmp_path, "day1.csv", [(1, 10), (2, 20)])
    assert streaming_run("r1") == [2, 2, 2]
    add_file(tmp_path, "day2.csv", [(3, 30)])
    fail.touch()
    assert streaming_run("r2") == [3, 1, None]  # the python sink fails: its rows stay undelivered
    fail.unlink()
    add_file(tmp_path, "day3.csv", [(4, 40)])
    assert streaming_run("r3") == [4, 1, 2]  # row 3 again for the python sink, with the failed call's id
    assert streaming_run("r4") == [4, 0, 0]  # nothing new
    assert rows(copy("mirror"), "id") == [(1,), (2,), (3,), (4,)]
    assert rows(copy("log"), "_ldp_run_id", "id") == [("r1", 1), ("r1", 2), ("r2", 3), ("r3", 4)]  # each once
    calls = (tmp_path / "transformations/sinks/calls.jsonl").read_text().splitlines()
    assert [json.loads(c) for c in calls] == [[0, [1, 2]], [1, [3, 4]], [2, []]]
