"""AUTO CDC applied locally (`pipelines.catalog.cdc`): LDP's documented example, every rule of the
semantics, and a property test against an in-memory model written here, independently of the engine's
window-function formulation."""
from __future__ import annotations

import random

import pytest
from chispa import assert_df_equality
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipelines.catalog.cdc import (CdcDataError, apply_changes, apply_snapshot_events, apply_snapshots,
                                  check_changes, snapshot_events)
from pipelines.core.cdc import CdcSpec, SnapshotCdcSpec

# LDP docs ("The AUTO CDC APIs", example: process SCD type 1 and type 2 updates), as in REFERENCE.md
LDP_FEED = [(124, "Raul", "Oaxaca", "INSERT", 1), (123, "Isabel", "Monterrey", "INSERT", 1),
            (125, "Mercedes", "Tijuana", "INSERT", 2), (126, "Lily", "Cancun", "INSERT", 2),
            (123, None, None, "DELETE", 6), (125, "Mercedes", "Guadalajara", "UPDATE", 6),
            (125, "Mercedes", "Mexicali", "UPDATE", 5), (123, "Isabel", "Chihuahua", "UPDATE", 5)]
LDP_SCHEMA = "userId int, name string, city string, operation string, sequenceNum int"
LDP_SPEC = {"keys": ["userId"], "sequence_by": "sequenceNum", "apply_as_deletes": "operation = 'DELETE'",
            "except_column_list": ["operation", "sequenceNum"]}

FEED = "id int, op string, seq int, a string, b int"


def _order(row: tuple) -> tuple:
    """Sort key for rows holding NULLs: NULL last in each column, values compared as they are."""
    return tuple((True, 0) if v is None else (False, v) for v in row)


def rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=_order)


def feed(spark, events: list[tuple]):
    return spark.createDataFrame(events, FEED)


def spec(**kwargs) -> CdcSpec:
    base = {"keys": ["id"], "sequence_by": "seq", "apply_as_deletes": "op = 'D'", "except_column_list": ["op", "seq"]}
    return CdcSpec(**{**base, **kwargs})


def test_ldp_documented_example_scd1(spark):
    out = apply_changes(spark.createDataFrame(LDP_FEED, LDP_SCHEMA), CdcSpec(**LDP_SPEC), table="users")
    expected = spark.createDataFrame([(124, "Raul", "Oaxaca"), (125, "Mercedes", "Guadalajara"),
                                      (126, "Lily", "Cancun")], "userId int, name string, city string")
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_ldp_documented_example_scd2(spark):
    out = apply_changes(spark.createDataFrame(LDP_FEED, LDP_SCHEMA), CdcSpec(**LDP_SPEC, stored_as_scd_type=2))
    expected = spark.createDataFrame(
        [(123, "Isabel", "Monterrey", 1, 5), (123, "Isabel", "Chihuahua", 5, 6), (124, "Raul", "Oaxaca", 1, None),
         (125, "Mercedes", "Tijuana", 2, 5), (125, "Mercedes", "Mexicali", 5, 6),
         (125, "Mercedes", "Guadalajara", 6, None), (126, "Lily", "Cancun", 2, None)],
        "userId int, name string, city string, __START_AT int, __END_AT int")
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)  # __*_AT typed like sequence_by


def test_the_ldp_example_split_over_runs_in_any_order_gives_the_same_target(spark):
    """The target is a function of the set of events: arrival order and run boundaries do not matter."""
    shuffled = random.Random(7).sample(LDP_FEED, len(LDP_FEED))
    for scd in (1, 2):
        cdc = CdcSpec(**LDP_SPEC, stored_as_scd_type=scd)
        once = rows(apply_changes(spark.createDataFrame(LDP_FEED, LDP_SCHEMA), cdc))
        assert rows(apply_changes(spark.createDataFrame(shuffled, LDP_SCHEMA), cdc)) == once
        retried = shuffled + shuffled[:3]  # a retried batch: the same events again
        assert rows(apply_changes(spark.createDataFrame(retried, LDP_SCHEMA), cdc)) == once


def test_a_delete_is_a_lasting_marker_in_type_1(spark):
    events = [(1, "U", 1, "x", 0), (1, "D", 5, None, None), (1, "U", 3, "late", 0), (2, "U", 2, "y", 0)]
    assert rows(apply_changes(feed(spark, events), spec())) == [(2, "y", 0)]
    events.append((1, "U", 6, "back", 1))  # a later sequence does bring it back
    assert rows(apply_changes(feed(spark, events), spec())) == [(1, "back", 1), (2, "y", 0)]


def test_type_2_a_delete_closes_the_version_and_a_late_event_slots_in_before_it(spark):
    events = [(1, "U", 1, "x", 0), (1, "D", 5, None, None), (1, "U", 3, "late", 0), (1, "U", 8, "again", 0),
              (2, "D", 4, None, None)]  # deleting a key never seen: nothing
    assert rows(apply_changes(feed(spark, events), spec(stored_as_scd_type=2))) == [
        (1, "again", 0, 8, None), (1, "late", 0, 3, 5), (1, "x", 0, 1, 3)]


def test_truncate_empties_a_type_1_target_as_of_its_sequence(spark):
    events = [(1, "U", 1, "x", 0), (2, "U", 2, "y", 0), (None, "T", 3, None, None), (2, "U", 4, "z", 0),
              (3, "U", 0, "old", 0)]  # late, but before the truncate: gone too
    cdc = spec(apply_as_truncates="op = 'T'")
    assert rows(apply_changes(feed(spark, events), cdc)) == [(2, "z", 0)]
    assert rows(apply_changes(feed(spark, events[:3]), cdc)) == []


def test_ignore_null_updates_keeps_stored_values_type_1(spark):
    events = [(1, "U", 1, "x", 5), (1, "U", 2, None, 6), (1, "U", 3, "y", None)]
    assert rows(apply_changes(feed(spark, events), spec(ignore_null_updates=True))) == [(1, "y", 6)]
    assert rows(apply_changes(feed(spark, events), spec())) == [(1, "y", None)]
    after_delete = events + [(1, "D", 4, None, None), (1, "U", 5, None, 7)]  # nothing stored after a delete
    assert rows(apply_changes(feed(spark, after_delete), spec(ignore_null_updates=True))) == [(1, None, 7)]


def test_ignore_null_updates_type_2_a_null_does_not_open_a_version(spark):
    events = [(1, "U", 1, "x", 5), (1, "U", 2, None, 5), (1, "U", 3, "y", 5)]
    assert rows(apply_changes(feed(spark, events), spec(stored_as_scd_type=2, ignore_null_updates=True))) == [
        (1, "x", 5, 1, 3), (1, "y", 5, 3, None)]
    assert rows(apply_changes(feed(spark, events), spec(stored_as_scd_type=2))) == [  # NULL is a change
        (1, "x", 5, 1, 2), (1, "y", 5, 3, None), (1, None, 5, 2, 3)]


def test_track_history_except_column_list_updates_untracked_columns_in_place(spark):
    events = [(1, "U", 1, "x", 0), (1, "U", 2, "x", 1), (1, "U", 3, "y", 1), (1, "U", 4, "y", 2),
              (1, "U", 5, "y", 2)]  # no change at all: no new version either
    cdc = spec(stored_as_scd_type=2, track_history_except_column_list=["b"])
    assert rows(apply_changes(feed(spark, events), cdc)) == [(1, "x", 1, 1, 3), (1, "y", 2, 3, None)]
    tracked = spec(stored_as_scd_type=2, track_history_column_list=["b"])
    assert rows(apply_changes(feed(spark, events), tracked)) == [
        (1, "x", 0, 1, 2), (1, "y", 1, 2, 4), (1, "y", 2, 4, None)]


def test_column_list_selects_the_stored_columns(spark):
    events = [(1, "U", 1, "x", 0)]
    out = apply_changes(feed(spark, events), CdcSpec(keys=["id"], sequence_by="seq", column_list=["b", "id"]))
    assert out.columns == ["id", "b"]  # input order
    out2 = apply_changes(feed(spark, events), CdcSpec(keys=["id"], sequence_by="seq", stored_as_scd_type=2))
    assert out2.columns == ["id", "op", "seq", "a", "b", "__START_AT", "__END_AT"]  # no bookkeeping columns


def test_a_list_sequence_by_is_compared_as_a_struct(spark):
    events = [(1, 1, 2, "b"), (1, 1, 1, "a"), (1, 0, 9, "first")]
    df = spark.createDataFrame(events, "id int, ts int, n int, v string")
    out = apply_changes(df, CdcSpec(keys=["id"], sequence_by=["ts", "n"], stored_as_scd_type=2,
                                    except_column_list=["ts", "n"]))
    history = [(r.v, tuple(r["__START_AT"]), r["__END_AT"] and tuple(r["__END_AT"]))
               for r in out.orderBy("__START_AT").collect()]
    assert history == [("first", (0, 9), (1, 1)), ("a", (1, 1), (1, 2)), ("b", (1, 2), None)]
    assert out.schema["__START_AT"].dataType.simpleString() == "struct<ts:int,n:int>"


def test_identical_events_at_one_sequence_collapse(spark):
    events = [(1, "U", 1, "x", 0), (1, "U", 1, "x", 0), (1, "D", 2, None, None), (1, "D", 2, "ignored", 3)]
    assert rows(apply_changes(feed(spark, events), spec(stored_as_scd_type=2))) == [(1, "x", 0, 1, 2)]


def test_different_events_at_one_sequence_are_an_error_naming_the_key(spark):
    events = [(1, "U", 1, "x", 0), (7, "U", 3, "x", 0), (7, "U", 3, "y", 0)]
    with pytest.raises(CdcDataError, match=r"table 'customers'.*share a key and a sequence: id=7 at sequence 3"):
        apply_changes(feed(spark, events), spec(), table="customers")
    upsert_and_delete = [(7, "U", 3, "x", 0), (7, "D", 3, None, None)]
    with pytest.raises(CdcDataError, match="id=7 at sequence 3"):
        apply_changes(feed(spark, upsert_and_delete), spec(stored_as_scd_type=2))


def test_null_keys_are_rejected_naming_the_table(spark):
    events = [(1, "U", 1, "x", 0), (None, "U", 2, "y", 0), (None, "U", 3, "z", 0)]
    with pytest.raises(CdcDataError, match=r"table 'customers'.*NULL key.*\{'id': 2\}"):
        apply_changes(feed(spark, events), spec(stored_as_scd_type=2), table="customers")


def test_a_truncate_needs_no_key_but_every_event_needs_a_sequence(spark):
    truncate = [(None, "T", 2, None, None), (1, "U", 3, "x", 0)]
    assert rows(apply_changes(feed(spark, truncate), spec(apply_as_truncates="op = 'T'"))) == [(1, "x", 0)]
    with pytest.raises(CdcDataError, match=r"table 't'.*1 change event\(s\) have a NULL in sequence_by"):
        apply_changes(feed(spark, [(1, "U", None, "x", 0)]), spec(), table="t")


def test_new_events_are_checked_against_the_applied_events_of_the_keys_they_touch(spark):
    applied = feed(spark, [(7, "U", 3, "x", 0), (8, "U", 1, "x", 0)])
    check_changes(feed(spark, [(7, "U", 3, "x", 0), (7, "U", 4, "y", 0)]), spec(), applied=applied)  # redelivered
    with pytest.raises(CdcDataError, match=r"table 'customers'.*share a key and a sequence: id=7 at sequence 3"):
        check_changes(feed(spark, [(7, "U", 3, "y", 0)]), spec(), applied=applied, table="customers")
    with pytest.raises(CdcDataError, match=r"NULL key.*\{'id': 1\}"):
        check_changes(feed(spark, [(None, "U", 5, "y", 0)]), spec(), applied=applied)
    truncated = spec(apply_as_truncates="op = 'T'")  # a clash at or below a truncate no longer counts
    check_changes(feed(spark, [(7, "U", 3, "y", 0)]), truncated,
                  applied=applied.unionByName(feed(spark, [(None, "T", 3, None, None)])))
    with pytest.raises(CdcDataError, match="id=7 at sequence 3"):
        check_changes(feed(spark, [(7, "U", 3, "y", 0), (None, "T", 2, None, None)]), truncated, applied=applied)


def test_a_column_the_spec_names_must_be_in_the_feed(spark):
    with pytest.raises(CdcDataError, match=r"lacks column\(s\) \['version'\]"):
        apply_changes(feed(spark, [(1, "U", 1, "x", 0)]), CdcSpec(keys=["id"], sequence_by="version"))


SNAPSHOT = "id int, v string"


def test_snapshots_insert_change_disappear(spark):
    snaps = [(spark.createDataFrame([(1, "a"), (2, "b")], SNAPSHOT), 1),
             (spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], SNAPSHOT), 2),
             (spark.createDataFrame([(2, "B"), (3, "c")], SNAPSHOT), 3)]
    shuffled = [snaps[2], snaps[0], snaps[1]]
    assert rows(apply_snapshots(shuffled, SnapshotCdcSpec(keys=["id"]))) == [(2, "B"), (3, "c")]
    history = apply_snapshots(snaps, SnapshotCdcSpec(keys=["id"], stored_as_scd_type=2))
    assert history.columns == ["id", "v", "__START_AT", "__END_AT"]
    assert rows(history) == [(1, "a", 1, 3), (2, "B", 2, None), (2, "b", 1, 2), (3, "c", 2, None)]


@pytest.mark.parametrize("duplicate", [(1, "b"), (1, "a")], ids=["different", "identical"])
def test_a_snapshot_with_two_rows_for_a_key_is_an_error(spark, duplicate):
    snaps = [(spark.createDataFrame([(1, "a"), duplicate], SNAPSHOT), 1)]
    with pytest.raises(CdcDataError, match="several rows for one key: id=1 in snapshot 1"):
        apply_snapshots(snaps, SnapshotCdcSpec(keys=["id"]), table="t")


def test_snapshots_applied_run_by_run_equal_all_at_once_and_store_only_changes(spark):
    """Each run diffs its new versions against the events earlier runs stored; a version not later
    than the last applied one is skipped, as LDP's snapshot flow does."""
    versions = {1: [(1, "a", "x"), (2, "b", "x")], 2: [(1, "a", "x"), (2, "B", "y"), (3, "c", "x")],
                3: [(2, "B", "z"), (3, "c", "x")], 4: [(2, "B", "z"), (3, "c", "x"), (1, "a", "x")]}
    schema = "id int, v string, note string, version int"
    frame = lambda *vs: spark.createDataFrame([(*r, v) for v in vs for r in versions[v]], schema)  # noqa: E731
    spec = SnapshotCdcSpec(keys=["id"], stored_as_scd_type=2, track_history_except_column_list=["note"],
                           version_by="version")
    stored = None
    for run in ([1], [3, 2], [2, 4]):  # 2 comes again with 4: already applied, skipped
        new = snapshot_events(frame(*run), spec, version="version", applied=stored, table="t")
        stored = new if stored is None else stored.unionByName(new)
        stored = spark.createDataFrame(stored.collect(), stored.schema)  # what a run's commit keeps
    all_at_once = apply_snapshots([(frame(v).drop("version"), v) for v in versions], spec)
    assert rows(apply_snapshot_events(stored, spec)) == rows(all_at_once) == [
        (1, "a", "x", 1, 3), (1, "a", "x", 4, None), (2, "B", "z", 2, None), (2, "b", "x", 1, 2),
        (3, "c", "x", 2, None)]  # note changed 2 -> 3 without a new version: tracked columns only
    assert stored.count() == 7  # v1: 2 new; v2: 1 changed, 1 new; v3: 1 gone, 1 changed; v4: 1 back


def test_a_snapshot_row_without_a_version_is_an_error(spark):
    frame = spark.createDataFrame([(1, "a", None)], "id int, v string, version int")
    with pytest.raises(CdcDataError, match="1 snapshot row.s. have no version"):
        snapshot_events(frame, SnapshotCdcSpec(keys=["id"], version_by="version"), version="version")


# ---------------------------------------------------------------- property: an in-memory model

def model(events: list[tuple], scd: int, ignore_null: bool, untracked: tuple[str, ...]) -> list[tuple]:
    """The semantics folded event by event in sequence order (sequences are unique in the feed)."""
    current: dict[int, dict] = {}  # type 1: the row; type 2: the open version
    history: list[tuple] = []
    for key, op, seq, a, b in sorted(set(events), key=lambda e: e[2]):
        if op == "T":
            current.clear()
            continue
        open_ = current.get(key)
        if op == "D":
            if open_ and scd == 2:
                history.append((key, open_["a"], open_["b"], open_["start"], seq))
            current.pop(key, None)
            continue
        values = {"a": a, "b": b}
        if ignore_null and open_:
            values = {c: open_[c] if values[c] is None else values[c] for c in values}
        changed = open_ is None or any(values[c] != open_[c] for c in ("a", "b") if c not in untracked)
        if scd == 2 and open_ and changed:
            history.append((key, open_["a"], open_["b"], open_["start"], seq))
        start = seq if changed else open_["start"]
        current[key] = {**values, "start": start}
    if scd == 1:
        return sorted(((k, v["a"], v["b"]) for k, v in current.items()), key=_order)
    return sorted(history + [(k, v["a"], v["b"], v["start"], None) for k, v in current.items()], key=_order)


@st.composite
def feeds(draw):
    scd = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(0, 9))
    seqs = draw(st.permutations(range(n)))
    ops = ["U", "U", "D"] + (["T"] if scd == 1 else [])
    events = []
    for seq in seqs:
        op = draw(st.sampled_from(ops))
        key = None if op == "T" else draw(st.integers(1, 3))
        events.append((key, op, seq, draw(st.sampled_from([None, "x", "y"])), draw(st.sampled_from([None, 0, 1]))))
    events += draw(st.lists(st.sampled_from(events), max_size=2)) if events else []  # redelivered events
    untracked = ("b",) if scd == 2 and draw(st.booleans()) else ()
    return events, scd, draw(st.booleans()), untracked


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=feeds())
def test_apply_changes_equals_an_in_memory_model(spark, case):
    events, scd, ignore_null, untracked = case
    cdc = spec(stored_as_scd_type=scd, ignore_null_updates=ignore_null,
               apply_as_truncates="op = 'T'" if scd == 1 else None,
               track_history_except_column_list=list(untracked) if untracked else None)
    assert rows(apply_changes(feed(spark, events), cdc)) == model(events, scd, ignore_null, untracked)


@st.composite
def snapshot_runs(draw):
    """Up to 4 snapshot versions of keys 1..3, applied over consecutive runs (a run may send an
    already applied version again: it is skipped)."""
    scd = draw(st.sampled_from([1, 2]))
    count = draw(st.integers(1, 4))
    values = st.tuples(st.sampled_from([None, "x", "y"]), st.sampled_from([None, 0, 1]))
    snapshots = {v: draw(st.dictionaries(st.integers(1, 3), values)) for v in range(1, count + 1)}
    cuts = sorted(draw(st.sets(st.integers(1, count - 1), max_size=count - 1))) if count > 1 else []
    bounds = [1, *[c + 1 for c in cuts], count + 1]
    runs = [list(range(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]
    for run in runs[1:]:
        if draw(st.booleans()):
            run.append(draw(st.integers(1, run[0] - 1)))  # a version sent again
    untracked = ("b",) if scd == 2 and draw(st.booleans()) else ()
    return snapshots, runs, scd, untracked


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=snapshot_runs())
def test_snapshots_over_any_runs_equal_the_in_memory_model(spark, case):
    snapshots, runs, scd, untracked = case
    spec = SnapshotCdcSpec(keys=["id"], stored_as_scd_type=scd, version_by="version",
                           track_history_except_column_list=list(untracked) if untracked else None)
    schema = "id int, a string, b int, version int"
    stored = None
    for run in runs:
        frame = spark.createDataFrame([(k, a, b, v) for v in run for k, (a, b) in snapshots[v].items()], schema)
        new = snapshot_events(frame, spec, version="version", applied=stored)
        stored = new if stored is None else stored.unionByName(new)
        stored = spark.createDataFrame(stored.collect(), stored.schema)
    visible = {v: held for v, held in snapshots.items() if held}  # a version column has no empty version
    assert rows(apply_snapshot_events(stored, spec)) == model(diffed(visible), scd, False, untracked)
    listed = [(spark.createDataFrame([(k, a, b) for k, (a, b) in snapshots[v].items()], "id int, a string, b int"), v)
              for v in snapshots]  # versions given with their frames: an empty one deletes every key
    assert rows(apply_snapshots(listed, spec)) == model(diffed(snapshots), scd, False, untracked)


def diffed(snapshots: dict[int, dict]) -> list[tuple]:
    """The model's own diff of snapshots into events: present rows upsert, vanished keys delete."""
    events, previous = [], {}
    for version in sorted(snapshots):
        events += [(k, "U", version, a, b) for k, (a, b) in snapshots[version].items()]
        events += [(k, "D", version, None, None) for k in previous if k not in snapshots[version]]
        previous = snapshots[version]
    return events


@st.composite
def split_feeds(draw):
    """Events over few keys and sequences (so some clash, some carry no key), cut into two runs."""
    events = draw(st.lists(st.tuples(st.sampled_from([1, 2, None]), st.sampled_from(["U", "U", "D", "T"]),
                                     st.integers(0, 3), st.sampled_from(["x", "y"]), st.just(0)),
                           min_size=1, max_size=8))
    events = [(None if op == "T" else key, op, seq, a, b) for key, op, seq, a, b in events]
    cut = draw(st.integers(0, len(events)))
    return events[:cut], events[cut:]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=split_feeds())
def test_checking_a_run_against_applied_events_agrees_with_checking_every_event(spark, case):
    """What the engine does (applied events checked when stored, each run's new ones against them)
    rejects exactly the feeds that checking all events at once rejects."""
    first, second = case
    cdc = spec(apply_as_truncates="op = 'T'")

    def verdict(check) -> str | None:
        try:
            check()
        except CdcDataError as error:
            return "NULL" if "NULL" in str(error) else "clash"
        return None

    assume(verdict(lambda: check_changes(feed(spark, first), cdc)) is None)  # stored: passed when stored
    new = [e for e in dict.fromkeys(second) if e not in set(first)]  # what the store adds: new and distinct
    by_run = verdict(lambda: check_changes(feed(spark, new), cdc, applied=feed(spark, list(dict.fromkeys(first)))))
    assert by_run == verdict(lambda: apply_changes(feed(spark, first + second), cdc))
