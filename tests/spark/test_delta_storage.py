"""Tables are Delta: atomic rewrites with the run id in each commit, history, time travel and restore,
table options (properties, change data feed, liquid clustering) and idempotent streaming writes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pyspark.sql import functions as F

from pipelines.catalog.reader import TimeTravel, stored_table
from pipelines.catalog.storage import MicroBatch, TableStore, commits_tagged
from pipelines.core.config import PipelineSettings, TableConfig
from pipelines.engine.cli import cli
from tests.spark.harness import Harness, add_file, catalog_of


@pytest.fixture
def store(spark, tmp_path):
    schema = f"delta_{tmp_path.name[-12:].lower().replace('-', '_')}"
    store = TableStore(spark, PipelineSettings(schema=schema), tmp_path / ".ldp")
    store.ensure_schema()
    return store


def test_a_run_writes_delta_tables_whose_commits_name_the_run(spark, tmp_path):
    harness = Harness(spark, tmp_path)
    add_file(tmp_path, "a.csv", [(1, 10), (2, 20)])
    _, first = harness.run()
    add_file(tmp_path, "b.csv", [(3, 30)])
    _, second = harness.run()

    detail = spark.sql(f"DESCRIBE DETAIL {harness.schema}.clean").first()
    assert detail.format == "delta" and detail.partitionColumns == ["id"]
    assert detail.properties.get("team") == "data-eng" and detail.description == "only positive"
    commits = stored_table(catalog_of(spark), harness.schema, "clean").history()
    assert [(c["version"], c["run_id"], c["rows"]) for c in commits] == [
        (1, second.run_id, 3), (0, first.run_id, 2)]
    assert first.to_dict()["run_id"] == first.run_id


def test_a_failing_write_leaves_the_previous_version_current(spark, store):
    table = TableConfig(name="kept", layer="silver")
    store.write_table(table, spark.range(3))
    failing = spark.range(5).select(F.when(F.col("id") < 4, F.col("id"))
                                    .otherwise(F.raise_error(F.lit("boom")).cast("long")).alias("id"))
    with pytest.raises(Exception, match="boom"):
        store.write_table(table, failing)
    assert store.count("kept") == 3
    assert [c["version"] for c in stored_table(catalog_of(spark), store.settings.schema_name, "kept").history()] == [0]


def test_properties_change_data_feed_and_liquid_clustering(spark, store):
    table = TableConfig(name="clustered", layer="silver", cluster_by=("g",), comment="by g",
                        table_properties={"delta.enableChangeDataFeed": True})
    store.write_table(table, spark.range(6).withColumn("g", F.col("id") % 2))
    store.write_table(table, spark.range(4).withColumn("g", F.col("id") % 2))
    name = store.fqn("clustered")
    detail = spark.sql(f"DESCRIBE DETAIL {name}").first()
    assert detail.clusteringColumns == ["g"] and detail.description == "by g"
    assert detail.properties["delta.enableChangeDataFeed"] == "true"
    changes = spark.read.option("readChangeFeed", "true").option("startingVersion", 1).table(name)
    assert sorted(r._change_type for r in changes.groupBy("_change_type").count().collect()) == ["delete", "insert"]


def test_a_retried_micro_batch_is_written_once(spark, store):
    table = TableConfig(name="stream_out", layer="bronze")
    batch = spark.range(3)
    store.append(table, batch, MicroBatch("app-1", 0, replace=False))  # creates the table
    store.append(table, spark.range(3, 5), MicroBatch("app-1", 1, replace=False))
    store.append(table, spark.range(3, 5), MicroBatch("app-1", 1, replace=False))  # the retry
    assert store.count("stream_out") == 5
    store.append(table, spark.range(2), MicroBatch("app-2", 0, replace=True))  # a rebuilt stream
    assert store.count("stream_out") == 2


def test_history_show_versions_and_restore_from_the_cli(spark, tmp_path):
    harness = Harness(spark, tmp_path)
    add_file(tmp_path, "a.csv", [(1, 10)])
    harness.run()
    add_file(tmp_path, "b.csv", [(2, 20), (3, 30)])
    harness.run()
    state, config = catalog_of(spark), str(harness.path)
    runner = CliRunner()

    def cli_json(*args: str) -> dict:
        result = runner.invoke(cli, [*args, "--config", config, "--state-dir", str(state), "--format", "json"])
        return {"exit_code": result.exit_code, **json.loads(result.stdout)}

    versions = cli_json("history", "clean")["versions"]
    assert [v["version"] for v in versions] == [1, 0] and versions[0]["operation"].startswith("CREATE OR REPLACE")
    assert [r["id"] for r in cli_json("show", "clean", "--version", "0")["rows"]] == [1]
    assert cli_json("show", "clean", "--as-of", "2001-01-01 00:00:00")["exit_code"] == 2

    refused = cli_json("restore", "clean", "--version", "7")
    assert refused["exit_code"] == 2 and "versions: 0-1" in refused["errors"][0]
    restored = cli_json("restore", "clean", "--version", "0")
    assert restored["exit_code"] == 0, restored
    assert [r.id for r in harness.table("clean").collect()] == [1]
    after = cli_json("history", "clean")["versions"]
    assert after[0]["operation"] == "RESTORE" and after[0]["run_id"] == restored["run_id"]
    record = json.loads((state / "runs" / f"{restored['run_id']}.json").read_text())
    assert record["summary"]["runner"] == "restore" and record["summary"]["restored_version"] == 0


def test_commits_outside_a_run_carry_no_stale_run_id(spark, store):
    table = TableConfig(name="tagged", layer="gold")
    with commits_tagged(spark, "run-A"):
        store.write_table(table, spark.range(1))
    store.write_table(table, spark.range(2))
    commits = stored_table(catalog_of(spark), store.settings.schema_name, "tagged").history()
    assert [c["run_id"] for c in commits] == [None, "run-A"]
    opened = stored_table(catalog_of(spark), store.settings.schema_name, "tagged").open(TimeTravel(version=0))
    assert opened is not None and opened[0].to_table().num_rows == 1


def test_a_column_name_delta_refuses_is_named_with_the_fix_and_nothing_is_written(spark, store):
    from pipelines.core.errors import RunError

    table = TableConfig(name="sums", layer="gold")
    with pytest.raises(RunError) as refused:
        store.write_table(table, spark.range(3).groupBy().sum("id"))
    assert "'sum(id)' cannot be stored in a Delta table" in str(refused.value) and ".alias(" in str(refused.value)
    assert not store.exists("sums")
    mapped = table.model_copy(update={"table_properties": {"delta.columnMapping.mode": "name"}})
    store.write_table(mapped, spark.range(3).groupBy().sum("id"))
    assert store.read("sums").columns == ["sum(id)"]


def test_the_local_session_bounds_deltas_log_cache(spark):
    """Delta's default cache (10,000 tables for 60 minutes) exhausted a long test session's 1 GB heap."""
    assert spark.conf.get("spark.databricks.delta.delta.log.cacheSize") == "32"


def test_stored_change_events_grow_by_the_new_ones_only_and_take_a_new_column(spark, store):
    from pipelines.catalog.cdc import apply_changes, change_counts
    from pipelines.core.vocabulary import CDC_EVENTS_SUFFIX
    from pipelines.core.cdc import CdcSpec

    spec = CdcSpec(keys=["id"], sequence_by="seq")
    table = TableConfig(name="kept", layer="silver", depends_on=("feed",), cdc=spec)

    def apply(rows: list[tuple], ddl: str) -> dict[str, int]:
        return store.apply_changes(table, spark.createDataFrame(rows, ddl), lambda e: apply_changes(e, spec),
                                   lambda new: change_counts(new, spec))

    def commits(name: str) -> list[str]:
        return [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {store.fqn(name)}").orderBy("version").collect()]

    first = [(1, "a", 1), (2, "b", 1)]
    assert apply(first, "id INT, name STRING, seq INT") == {"upserts": 2, "deletes": 0}
    assert apply([*first, (1, "A", 2)], "id INT, name STRING, seq INT") == {"upserts": 1, "deletes": 0}
    events = table.name + CDC_EVENTS_SUFFIX
    assert commits(events)[-1] == "WRITE"  # appended: the stored events are not rewritten
    assert apply([(2, "B", 3, "x")], "id INT, name STRING, seq INT, city STRING") == {"upserts": 1, "deletes": 0}
    assert commits(events)[-1] == "CREATE OR REPLACE TABLE AS SELECT"  # a new column: rewritten with it
    assert sorted(tuple(r) for r in store.read(events).collect()) == [
        (1, "A", 2, None), (1, "a", 1, None), (2, "B", 3, "x"), (2, "b", 1, None)]
    assert sorted(tuple(r) for r in store.read("kept").collect()) == [(1, "A", 2, None), (2, "B", 3, "x")]
