"""A Delta table's change data feed as a source (`type: delta_cdf`): into an append table and straight
into an AUTO CDC table, as a stream (each run reads only the commits since the last) and as a batch (the
whole feed each run), with the same rows either way."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.catalog.sources import read_source
from pipelines.core.sources import DeltaCdfSource
from tests.spark.harness import Harness

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: user_changes
    layer: bronze
    source: {type: delta_cdf, path: ./users_db}
  - name: users
    layer: silver
    source: {type: delta_cdf, path: ./users_db}
    cdc:
      keys: [id]
      sequence_by: _commit_version
      apply_as_deletes: "_change_type = 'delete'"
      except_column_list: [_change_type, _commit_version, _commit_timestamp]
"""
MODULES = {"bronze/user_changes.py": "def user_changes(source):\n    return source\n"}
FIRST = ["INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, 'c')"]
LATER = ["UPDATE {t} SET name = 'B' WHERE id = 2", "DELETE FROM {t} WHERE id = 3", "INSERT INTO {t} VALUES (4, 'd')"]


def upstream(spark, root: Path) -> str:
    """A Delta table with its change data feed on, at `root/users_db` (version 0: created, empty)."""
    table = f"delta.`{root / 'users_db'}`"
    spark.sql(f"CREATE TABLE {table} (id INT, name STRING) USING delta "
              "TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    return table


def commit(spark, table: str, statements: list[str]) -> None:
    for statement in statements:
        spark.sql(statement.format(t=table))


def changes(harness: Harness) -> list[tuple]:
    return sorted((r.id, r.name, r._change_type, r._commit_version) for r in harness.table("user_changes").collect())


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_a_change_feed_lands_in_an_append_table_and_an_auto_cdc_table(spark, tmp_path, mode):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    table = upstream(spark, tmp_path)
    commit(spark, table, FIRST)
    tables, result = harness.run(mode=mode)
    assert result.status == "success", [t.error for t in tables.values()]
    assert sorted(tuple(r) for r in harness.table("users").collect()) == [(1, "a"), (2, "b"), (3, "c")]
    assert tables["users"].changes == {"upserts": 3, "deletes": 0}

    commit(spark, table, LATER)
    for applied in (3, 0):  # the rerun finds no new commit: nothing changes
        tables, result = harness.run(mode=mode)
        assert result.status == "success", [t.error for t in tables.values()]
        assert changes(harness) == [(1, "a", "insert", 1), (2, "B", "update_postimage", 2),
                                    (2, "b", "insert", 1), (3, "c", "delete", 3), (3, "c", "insert", 1),
                                    (4, "d", "insert", 4)]  # no update_preimage: `preimages` is off
        assert sorted(tuple(r) for r in harness.table("users").collect()) == [(1, "a"), (2, "B"), (4, "d")]
        assert tables["users"].rows_written == applied
        if mode == "streaming":
            assert tables["user_changes"].rows_written == applied  # only the commits since the last run


def test_preimages_and_a_starting_version_are_the_readers_options(spark, tmp_path):
    table = upstream(spark, tmp_path)
    commit(spark, table, FIRST + LATER)
    source = DeltaCdfSource(type="delta_cdf", path="users_db", starting_version=2, preimages=True)
    batch = read_source(spark, source, tmp_path, streaming=False)
    assert sorted((r.id, r._change_type) for r in batch.collect()) == [
        (2, "update_postimage"), (2, "update_preimage"), (3, "delete"), (4, "insert")]
    assert read_source(spark, source, tmp_path, streaming=True).isStreaming


def test_a_table_without_a_change_feed_fails_the_run_naming_the_cause(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    spark.sql(f"CREATE TABLE delta.`{tmp_path / 'users_db'}` (id INT, name STRING) USING delta")
    tables, result = harness.run()
    assert result.status == "failed"
    assert "DELTA_MISSING_CHANGE_DATA" in tables["user_changes"].error
    # Delta wraps its message over lines: the whole sentence is kept, not its first line
    assert "as change data was not recorded for version [0]." in tables["user_changes"].error


def test_databricks_registers_a_streaming_table_and_an_auto_cdc_flow_reading_the_change_feed(spark, tmp_path):
    from pyspark.pipelines.output import StreamingTable

    from tests.spark.test_registrar import register

    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    commit(spark, upstream(spark, tmp_path), FIRST)
    _, registry = register(spark, harness.path, mode="streaming")
    assert registry.cdc_calls == [
        ("create_streaming_table", {"name": "users", "comment": None}),
        ("create_auto_cdc_flow", {"target": "users", "source": "users__cdc_feed", "keys": ["id"],
                                  "sequence_by": "_commit_version", "apply_as_deletes": "_change_type = 'delete'",
                                  "except_column_list": ["_change_type", "_commit_version", "_commit_timestamp"],
                                  "stored_as_scd_type": 1})]
    assert isinstance(registry.outputs["user_changes"], StreamingTable)
    for flow in ("user_changes", "users__cdc_feed"):
        feed = registry.flows[flow].func()
        assert feed.isStreaming and {"_change_type", "_commit_version"} <= set(feed.columns), flow
