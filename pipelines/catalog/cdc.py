"""AUTO CDC applied locally: a CDC target as a pure function of every change event seen so far.

The engine keeps each accepted event in a hidden Delta event table and the target is what applying all
of them gives, so the result does not depend on how events were split over runs or in which order they
arrived, and a retried batch changes nothing (its events are already there). Each key's rows follow
from its own events (truncates aside), so a run recomputes only the keys its events touch
(`TableStore.apply_changes`). Events are checked once,
before they are stored (`check_changes`: the new ones, against the stored events of the keys they
touch), so recomputing the target does not re-check the history. The semantics follow
Lakeflow's documented AUTO CDC; where the docs are silent, issue 22's "Semantics decided here":

- events are ordered by `sequence_by` (a list is compared as a struct, in its order);
- a delete removes the row (type 1) or closes the current version at the delete's sequence (type 2);
  it is a lasting marker: a lower-sequence event arriving later never brings the key back;
- type 2: an upsert opens a version at its sequence when there is no current version or a tracked
  column changed; otherwise it updates the current version in place (keeping `__START_AT`);
  `__START_AT`/`__END_AT` are typed like sequence_by and `__END_AT` is NULL for the current version;
- `ignore_null_updates`: a column arriving NULL keeps the value stored since the last delete;
- a truncate (type 1) drops every event at or below its sequence; later events still apply;
- NULL keys and NULL sequences are an error, as in LDP (AUTOCDC_MICROBATCH_VALIDATION NULL_KEY /
  NULL_SEQUENCE);
- two events with one key and one sequence: identical ones (same delete flag and stored values) are
  one event delivered twice and collapse; different ones are an error naming the key, because LDP
  requires a unique sequence per key and leaves the winner undefined (Spark's AutoCDC, SPARK-57395).

DataFrame API only: window functions and aggregates, no RDD, no Python UDF.
"""
from __future__ import annotations

from typing import Any, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.core.cdc import END_AT, START_AT, CdcSpec, SnapshotCdcSpec
from pipelines.core.errors import Problem, RunError

__all__ = ["apply_changes", "check_changes", "apply_snapshots", "apply_snapshot_events", "snapshot_events",
           "change_counts", "CdcDataError"]

_SEQ, _DEL, _TRUNC, _SEG = "__cdc_seq", "__cdc_delete", "__cdc_truncate", "__cdc_segment"
_NEW, _VER, _CLOSE, _NEXT, _ROW = "__cdc_new", "__cdc_version", "__cdc_close", "__cdc_next", "__cdc_row"
_SNAP, _GONE = "__cdc_snapshot", "__cdc_gone"
_PREVIOUS, _KEY_SEEN, _SAME = "__cdc_previous", "__cdc_key_seen", "__cdc_same"  # a snapshot's diff
_EXAMPLES = 5  # offending keys named in an error


class CdcDataError(RunError):
    """The change events break a rule LDP enforces too (NULL key or sequence, conflicting duplicates)."""


def apply_changes(events: DataFrame, spec: CdcSpec, *, table: str | None = None, check: bool = True) -> DataFrame:
    """The target's rows after applying every event in `events`: business columns only (type 1), plus
    `__START_AT` and `__END_AT` (type 2). Raises CdcDataError (naming `table`) on invalid events;
    `check=False` when `check_changes` passed them already (an engine's stored events)."""
    missing = spec.missing_columns(events.columns)
    if missing:
        raise CdcDataError(Problem(f"the change feed lacks column(s) {missing} named in cdc", table=table,
                                   hint=f"its columns: {events.columns}"))
    stored = spec.stored_columns(events.columns)
    df = _flagged(events, spec)
    if check:
        _check_nulls(df, spec, table)
    df = _reduced(df, spec, stored)
    if check:
        _check_duplicates(df, spec, table)
    if spec.stored_as_scd_type == 1:
        return _scd1(df, spec, stored)
    return _scd2(df, spec, stored, spec.tracked_columns(events.columns))


def check_changes(new: DataFrame, spec: CdcSpec | SnapshotCdcSpec, *, applied: DataFrame | None = None,
                  table: str | None = None) -> None:
    """Raise CdcDataError if `new` events, added to the `applied` ones (which passed this check when
    they were stored), break a rule `apply_changes` enforces. Only the new events and the applied
    events of the keys they touch are read, so a run's check grows with its changes, not the history."""
    if isinstance(spec, SnapshotCdcSpec):
        spec = spec.change_spec(_SNAP, _GONE)
    df = _flagged(new, spec)
    _check_nulls(df, spec, table)
    if applied is not None:
        before = _flagged(applied.select(*new.columns), spec)
        touched = df.where(~F.col(_TRUNC)).select(*spec.keys).distinct()
        df = df.unionByName(before.join(touched, list(spec.keys), "left_semi")).unionByName(
            before.where(F.col(_TRUNC)))  # truncates name no key, and decide which events still count
    _check_duplicates(_reduced(df, spec, spec.stored_columns(new.columns)), spec, table)


def change_counts(events: DataFrame, spec: CdcSpec | SnapshotCdcSpec) -> dict[str, int]:
    """How many of `events` (as stored: before `apply_changes` prepares them) are upserts and deletes,
    and truncates where the spec has them: what a run applied, for its summary."""
    if isinstance(spec, SnapshotCdcSpec):
        spec = spec.change_spec(_SNAP, _GONE)
    deletes, truncates = _flag(spec.apply_as_deletes), _flag(spec.apply_as_truncates)
    row = events.agg(F.count(F.lit(1)).alias("all"), F.sum(deletes.cast("int")).alias("deletes"),
                     F.sum((truncates & ~deletes).cast("int")).alias("truncates")).first()
    counts = {"upserts": row["all"] - (row["deletes"] or 0) - (row["truncates"] or 0),
              "deletes": row["deletes"] or 0}
    if spec.apply_as_truncates:
        counts["truncates"] = row["truncates"] or 0
    return counts


def _flag(condition: str | None) -> Column:
    return F.coalesce(F.expr(condition), F.lit(False)) if condition else F.lit(False)


def _flagged(events: DataFrame, spec: CdcSpec) -> DataFrame:
    """Events with their sequence (one column, a struct for a list) and their delete and truncate flags."""
    sequence = spec.sequence_columns
    return events.select(
        *[F.col(c) for c in events.columns],
        (F.col(sequence[0]) if len(sequence) == 1 else F.struct(*sequence)).alias(_SEQ),
        _flag(spec.apply_as_deletes).alias(_DEL), _flag(spec.apply_as_truncates).alias(_TRUNC))


def _reduced(df: DataFrame, spec: CdcSpec, stored: Sequence[str]) -> DataFrame:
    """Flagged events with truncates applied and an event delivered twice kept once."""
    if spec.apply_as_truncates:
        df = _after_truncates(df)
    payload = [c for c in stored if c not in spec.keys]
    # A delete's payload means nothing: blank it so two copies of one delete are one event.
    df = df.where(~F.col(_TRUNC)).select(
        *spec.keys, _SEQ, _DEL, *[F.when(~F.col(_DEL), F.col(c)).alias(c) for c in payload])
    return df.dropDuplicates([*spec.keys, _SEQ, _DEL, *payload])


def _check_nulls(df: DataFrame, spec: CdcSpec, table: str | None) -> None:
    """NULL keys (truncates aside: they name no key) and NULL sequences are rejected, as LDP does."""
    counts = [F.sum(F.when(F.col(k).isNull() & ~F.col(_TRUNC), 1).otherwise(0)).alias(k) for k in spec.keys]
    null_sequence = F.greatest(*[F.col(c).isNull().cast("int") for c in spec.sequence_columns], F.lit(0))
    row = df.agg(*counts, F.sum(null_sequence).alias(_SEQ)).collect()[0]
    null_keys = {k: row[k] for k in spec.keys if row[k]}
    if null_keys:
        raise CdcDataError(Problem(
            f"change events with a NULL key never match another row; rows per key column: {null_keys}",
            table=table, hint="filter or fix them before CDC (LDP rejects them too: NULL_KEY)"))
    if row[_SEQ]:
        raise CdcDataError(Problem(
            f"{row[_SEQ]} change event(s) have a NULL in sequence_by {list(spec.sequence_columns)}",
            table=table, hint="every event needs a sequence to be ordered (LDP: NULL_SEQUENCE)"))


def _after_truncates(df: DataFrame) -> DataFrame:
    """Only events after the latest truncate's sequence survive; truncates themselves carry no row."""
    last = df.where(F.col(_TRUNC)).agg(F.max(_SEQ).alias(_CLOSE))
    return _later(df, last, _SEQ)


def _check_duplicates(df: DataFrame, spec: CdcSpec, table: str | None) -> None:
    """Two different events for one key at one sequence: which wins is undefined, so say so."""
    clashes = (df.groupBy(*spec.keys, _SEQ).count().where(F.col("count") > 1)
               .limit(_EXAMPLES).collect())
    if clashes:
        named = "; ".join(", ".join(f"{k}={r[k]!r}" for k in spec.keys) + f" at sequence {_show(r[_SEQ])}"
                          for r in clashes)
        raise CdcDataError(Problem(
            f"different change events share a key and a sequence: {named}", table=table,
            hint="sequence_by must be unique per key (add a tie-breaker column: sequence_by: [a, b])"))


def _show(value: Any) -> str:
    return repr(tuple(value)) if hasattr(value, "asDict") else repr(value)


def _segmented(df: DataFrame, spec: CdcSpec, payload: Sequence[str]) -> DataFrame:
    """Each event with its segment (deletes before it, per key) and its effective payload: with
    ignore_null_updates a NULL keeps the latest non-NULL value since the segment's start."""
    by_key = Window.partitionBy(*spec.keys).orderBy(_SEQ).rowsBetween(Window.unboundedPreceding, 0)
    deletes = F.col(_DEL).cast("int")
    df = df.withColumn(_SEG, F.sum(deletes).over(by_key) - deletes)
    if not spec.ignore_null_updates or not payload:
        return df
    in_segment = (Window.partitionBy(*spec.keys, _SEG).orderBy(_SEQ)
                  .rowsBetween(Window.unboundedPreceding, 0))
    return df.select(*spec.keys, _SEQ, _DEL, _SEG,
                     *[F.last(c, ignorenulls=True).over(in_segment).alias(c) for c in payload])


def _scd1(df: DataFrame, spec: CdcSpec, stored: Sequence[str]) -> DataFrame:
    """The latest event per key, unless it is a delete."""
    payload = [c for c in stored if c not in spec.keys]
    latest = Window.partitionBy(*spec.keys).orderBy(F.col(_SEQ).desc())
    df = _segmented(df, spec, payload)
    return (df.withColumn(_ROW, F.row_number().over(latest))
            .where((F.col(_ROW) == 1) & ~F.col(_DEL)).select(*stored))


def _scd2(df: DataFrame, spec: CdcSpec, stored: Sequence[str], tracked: Sequence[str]) -> DataFrame:
    """Versions: an upsert opens one when its segment has none yet or a tracked column changed."""
    payload = [c for c in stored if c not in spec.keys]
    df = _segmented(df, spec, payload)
    in_segment = Window.partitionBy(*spec.keys, _SEG).orderBy(_SEQ)
    upserts = df.where(~F.col(_DEL))
    first = F.row_number().over(in_segment) == 1
    if tracked:
        values = F.struct(*tracked)
        first = first | ~values.eqNullSafe(F.lag(values).over(in_segment))
    running = in_segment.rowsBetween(Window.unboundedPreceding, 0)
    upserts = upserts.withColumn(_NEW, first.cast("int")).withColumn(_VER, F.sum(_NEW).over(running))
    latest = F.max_by(F.struct(*payload), _SEQ) if payload else F.lit(None)
    versions = upserts.groupBy(*spec.keys, _SEG, _VER).agg(F.min(_SEQ).alias(START_AT), latest.alias(_ROW))
    following = Window.partitionBy(*spec.keys, _SEG).orderBy(START_AT)
    versions = versions.withColumn(_NEXT, F.lead(START_AT).over(following))
    closes = df.where(F.col(_DEL)).select(*spec.keys, _SEG, F.col(_SEQ).alias(_CLOSE))
    joined = versions.join(closes, [*spec.keys, _SEG], "left")
    return joined.select(*[F.col(f"{_ROW}.{c}").alias(c) if c in payload else F.col(c) for c in stored],
                         START_AT, F.coalesce(_NEXT, _CLOSE).alias(END_AT))


def apply_snapshots(snapshots: Sequence[tuple[DataFrame, Any]], spec: SnapshotCdcSpec, *,
                    table: str | None = None) -> DataFrame:
    """The target after snapshots `(DataFrame, version)` (any order; versions sortable, distinct): a
    row present is an upsert at its version, a key gone from the next snapshot a delete at that
    version. Type 2 versions change only when a row's values do."""
    if not snapshots:
        raise CdcDataError(Problem("no snapshot to apply (LDP: FIRST_SNAPSHOT_EMPTY)", table=table))
    versions = [v for _, v in snapshots]
    if len(set(versions)) != len(versions) or any(v is None for v in versions):
        raise CdcDataError(Problem(f"snapshot versions must be distinct and not NULL, got {sorted(versions)}",
                                   table=table))
    rows = snapshots[0][0].withColumn(_SNAP, F.lit(versions[0]))
    for frame, version in snapshots[1:]:
        rows = rows.unionByName(frame.withColumn(_SNAP, F.lit(version)))
    return apply_snapshot_events(snapshot_events(rows, spec, version=_SNAP, versions=versions, table=table), spec,
                                 table=table)


def apply_snapshot_events(events: DataFrame, spec: SnapshotCdcSpec, *, table: str | None = None,
                          check: bool = True) -> DataFrame:
    """The target after the change events `snapshot_events` derived (from any number of runs)."""
    return apply_changes(events, spec.change_spec(_SNAP, _GONE), table=table, check=check)


def snapshot_events(snapshots: DataFrame, spec: SnapshotCdcSpec, *, version: str,
                    versions: Sequence[Any] = (), applied: DataFrame | None = None,
                    table: str | None = None) -> DataFrame:
    """Change events for the snapshots in `snapshots` (told apart by the column `version`) later than
    every one behind `applied` (the events earlier runs derived): a row new or changed since the
    previous snapshot is an upsert at its version, a key gone from a snapshot a delete at that version.
    Unchanged rows make no event, so the stored events grow with the changes, not the snapshots.
    A version exists only through its rows unless listed in `versions`: list it to apply an empty one."""
    payload = [c for c in snapshots.columns if c not in spec.keys and c != version]
    rows = snapshots.select(*spec.keys, *payload, F.col(version).alias(_SNAP))
    _check_snapshot_keys(rows, spec, table)
    if applied is not None:  # the previous snapshot's rows, at its version, to diff the first new one with
        last = applied.agg(F.max(_SNAP).alias(_CLOSE))
        current = apply_changes(applied, spec.change_spec(_SNAP, _GONE, current_only=True), table=table,
                                check=False)  # stored events passed check_changes
        rows = _later(rows, last).unionByName(current.crossJoin(last.withColumnRenamed(_CLOSE, _SNAP)))
    in_order = Window.orderBy(_SNAP)  # versions are few: one partition orders them
    known = rows.select(_SNAP)
    for listed in versions:
        known = known.unionByName(rows.sparkSession.range(1).select(F.lit(listed).alias(_SNAP)))
    if applied is not None:  # listed versions not later than the last applied one are skipped too
        known = _later(known, last, or_equal=True)
    order = known.distinct().select(
        _SNAP, F.lead(_SNAP).over(in_order).alias(_NEXT), F.lag(_SNAP).over(in_order).alias(_PREVIOUS))
    by_key = Window.partitionBy(*spec.keys).orderBy(_SNAP)
    values = F.struct(*payload) if payload else F.lit(None)
    rows = rows.join(F.broadcast(order), _SNAP).select(
        "*", F.lead(_SNAP).over(by_key).alias(_CLOSE), F.lag(_SNAP).over(by_key).alias(_KEY_SEEN),
        values.eqNullSafe(F.lag(values).over(by_key)).alias(_SAME))
    unchanged = F.col(_KEY_SEEN).eqNullSafe(F.col(_PREVIOUS)) & F.col(_SAME)  # in the previous snapshot, as is
    upserts = rows.where(~unchanged).select(*spec.keys, *payload, _SNAP, F.lit(False).alias(_GONE))
    gone = (rows.where(F.col(_NEXT).isNotNull() & ~F.col(_NEXT).eqNullSafe(F.col(_CLOSE)))
            .select(*spec.keys, *[F.lit(None).cast(rows.schema[c].dataType).alias(c) for c in payload],
                    F.col(_NEXT).alias(_SNAP), F.lit(True).alias(_GONE)))
    events = upserts.unionByName(gone)
    if applied is not None:  # the previous snapshot's own events are stored already
        events = _later(events, last)
    return events


def _later(rows: DataFrame, last: DataFrame, column: str = _SNAP, or_equal: bool = False) -> DataFrame:
    """The `rows` whose `column` is later than (or equal to) the one value `_CLOSE` of the one-row
    `last` (all of them when it is NULL: nothing before)."""
    version, latest = F.col(column), F.col(_CLOSE)
    later = version >= latest if or_equal else version > latest
    return rows.crossJoin(last).where(latest.isNull() | later).drop(_CLOSE)


def _check_snapshot_keys(rows: DataFrame, spec: SnapshotCdcSpec, table: str | None) -> None:
    """One row per key in each snapshot, as LDP requires (DUPLICATE_KEY_VIOLATION)."""
    nulls = rows.where(F.col(_SNAP).isNull()).count()
    if nulls:
        raise CdcDataError(Problem(f"{nulls} snapshot row(s) have no version (NULL)", table=table,
                                   key="snapshot_cdc.version_by", value=spec.version_by))
    clashes = (rows.groupBy(*spec.keys, _SNAP).count().where(F.col("count") > 1)
               .limit(_EXAMPLES).collect())
    if clashes:
        named = "; ".join(", ".join(f"{k}={r[k]!r}" for k in spec.keys) + f" in snapshot {r[_SNAP]!r}"
                          for r in clashes)
        raise CdcDataError(Problem(f"a snapshot holds several rows for one key: {named}", table=table,
                                   hint="a snapshot must have at most one row per key"))
