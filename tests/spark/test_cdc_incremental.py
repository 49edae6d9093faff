"""A CDC target's runs after the first recompute only the keys their new events touch and MERGE those
keys' rows in; the target stays equal to `apply_changes` of every event (the whole-recompute oracle),
and anything that could make the stored target differ from it (a target written outside the engine, a
changed spec, a run failing between its writes, a truncate) recomputes it from every event."""
from __future__ import annotations

import pytest

from pipelines.catalog.cdc import apply_changes, change_counts
from pipelines.catalog.storage import TableStore
from pipelines.core.cdc import CdcSpec
from pipelines.core.config import PipelineSettings, TableConfig

SCHEMA = "id int, op string, seq int, a string, b int"
RUNS = [
    [(1, "U", 1, "x", 0), (2, "U", 1, "x", 0), (3, "U", 1, "x", 0), (4, "U", 1, "x", 0)],
    [(1, "U", 5, "y", 0), (2, "U", 3, "y", 1), (2, "U", 0, "late", 0), (3, "D", 4, None, None),
     (5, "U", 2, "x", 1), (1, "U", 1, "x", 0)],  # an update, a late one, a delete, a new key, a replay
    [(1, "U", 5, "y", 0)],  # nothing new
    [(3, "U", 2, "between", 0), (5, "U", 6, "z", 1), (6, "U", 1, "x", 0)],  # late for a deleted key
]


def target(cdc: CdcSpec) -> TableConfig:
    return TableConfig(name="target", layer="silver", depends_on=["feed"], cdc=cdc)


def spec(scd: int, **more) -> CdcSpec:
    return CdcSpec(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op", "seq"],
                   stored_as_scd_type=scd, **more)


@pytest.fixture
def store(spark, tmp_path):
    store = TableStore(spark, PipelineSettings(schema=f"cdc_{tmp_path.name[-12:].lower().replace('-', '_')}"),
                       tmp_path / ".ldp")
    store.ensure_schema()
    return store


def apply(store: TableStore, table: TableConfig, events: list[tuple]) -> dict[str, int]:
    cdc = table.cdc
    return store.apply_changes(table, store.spark.createDataFrame(events, SCHEMA),
                               lambda all_events: apply_changes(all_events, cdc, check=False),
                               lambda new: change_counts(new, cdc),
                               by_key=tuple(cdc.keys) if cdc.applies_per_key else ())


def stored(store: TableStore, name: str) -> list[tuple]:
    return sorted((tuple(r) for r in store.read(name).collect()), key=repr)


def oracle(spark, cdc: CdcSpec, events: list[tuple]) -> list[tuple]:
    return sorted((tuple(r) for r in apply_changes(spark.createDataFrame(events, SCHEMA), cdc).collect()), key=repr)


def operations(store: TableStore, name: str) -> list[str]:
    return [r["operation"] for r in store.spark.sql(f"DESCRIBE HISTORY {store.fqn(name)}").orderBy("version").collect()]


@pytest.mark.parametrize("scd", [1, 2])
def test_each_run_merges_the_keys_it_touches_and_equals_recomputing_every_event(spark, store, scd):
    table = target(spec(scd))
    seen: list[tuple] = []
    for events in RUNS:
        apply(store, table, events)
        seen += events
        assert stored(store, "target") == oracle(spark, table.cdc, seen)
    assert operations(store, "target") == ["CREATE OR REPLACE TABLE AS SELECT", "MERGE", "MERGE"]  # run 3: no commit


def test_a_target_written_outside_the_engine_or_a_changed_spec_is_recomputed_from_every_event(spark, store):
    table = target(spec(2))
    apply(store, table, RUNS[0])
    spark.sql(f"DELETE FROM {store.fqn('target')} WHERE id = 4")  # or a RESTORE: not what the events make
    apply(store, table, RUNS[1])
    assert stored(store, "target") == oracle(spark, table.cdc, RUNS[0] + RUNS[1])  # key 4 is back

    untracked = table.model_copy(update={"cdc": spec(2, track_history_except_column_list=["b"])})
    apply(store, untracked, RUNS[3])
    assert stored(store, "target") == oracle(spark, untracked.cdc, RUNS[0] + RUNS[1] + RUNS[3])
    assert operations(store, "target")[1:] == ["DELETE", "CREATE OR REPLACE TABLE AS SELECT",
                                               "CREATE OR REPLACE TABLE AS SELECT"]


def test_a_run_failing_after_its_merge_leaves_its_events_to_the_next_run(spark, store, monkeypatch):
    table = target(spec(2))
    apply(store, table, RUNS[0])
    append = TableStore.append

    def failing(self, target, df, micro=None):
        raise OSError("disk full")

    monkeypatch.setattr(TableStore, "append", failing)
    with pytest.raises(OSError, match="disk full"):
        apply(store, table, RUNS[1])
    assert operations(store, "target")[-1] == "MERGE"  # the target moved on, the events did not
    monkeypatch.setattr(TableStore, "append", append)
    assert apply(store, table, RUNS[1]) == {"upserts": 4, "deletes": 1}  # the same events, new again
    assert stored(store, "target") == oracle(spark, table.cdc, RUNS[0] + RUNS[1])
    apply(store, table, RUNS[3])  # and the runs after it merge again
    assert stored(store, "target") == oracle(spark, table.cdc, RUNS[0] + RUNS[1] + RUNS[3])
    assert operations(store, "target")[-1] == "MERGE"


def test_a_spec_with_truncates_recomputes_every_run(spark, store):
    table = target(spec(1, apply_as_truncates="op = 'T'"))
    runs = [RUNS[0], [(None, "T", 2, None, None), (2, "U", 3, "after", 0)]]
    seen: list[tuple] = []
    for events in runs:
        apply(store, table, events)
        seen += events
    assert stored(store, "target") == oracle(spark, table.cdc, seen) == [(2, "after", 0)]
    assert operations(store, "target") == ["CREATE OR REPLACE TABLE AS SELECT"] * 2
