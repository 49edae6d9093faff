"""Materializing a table under its data-quality policy: the one place that decides where failing rows go.

`on_error: quarantine` splits one computation into the table and `{table}_quarantine`, `drop` leaves
failing rows out, `fail` refuses the write; the catalog (`TableStore`) only writes. A checked table is
computed once into a local checkpoint, its rows and per-check failures observed as it is computed
(counted after, on Spark Connect), and the writes read it (Spark's `Observation` sees nothing of a
Delta write: its query runs inside the command).
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.catalog.sources import union_by_name
from pipelines.catalog.storage import Accept, MicroBatch, TableStore
from pipelines.core.config import TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.results import CheckResult, events_applied
from pipelines.catalog.cdc import apply_changes, apply_snapshot_events, change_counts, check_changes, snapshot_events
from pipelines.core.cdc import CdcSpec, SnapshotCdcSpec
from pipelines.core.outputs import (AppendFlow, CdcTarget, MaterializedView, Output, OutputHandlers,
                                    SnapshotCdcTarget, StreamingTable)
from pipelines.core.vocabulary import ERRORS, RESULT_COLUMNS, Criticality, OnError

from .enforce import CheckedFrame, Expectations, QualityStats, quarantine_config

QUARANTINE_FLAG = "_ldp_quarantined"
SNAPSHOT_VERSION = "__ldp_snapshot_taken"  # a re-read snapshot's version: when it was taken (a timestamp)


class QualityFailure(RunError):
    """on_error: fail and some rows failed an error-level check (the table is not written)."""


@dataclass(frozen=True)
class WriteStats:
    rows_written: int
    quality: QualityStats
    changes: dict[str, int] | None = None  # a CDC table: the change events applied, by kind
    flows: dict[str, dict[str, int]] | None = None  # a table with flows: each flow's counts

    @classmethod
    def of_flows(cls, per_flow: Mapping[str, "WriteStats"]) -> "WriteStats":
        """A table written by several flows: the totals, and each flow's rows and failing rows."""
        checks: dict[str, CheckResult] = {}
        for stats in per_flow.values():
            for check in stats.quality.checks:
                seen = checks.get(check.name)
                failed = check.failed if seen is None or seen.failed is None or check.failed is None \
                    else seen.failed + check.failed
                checks[check.name] = dataclasses.replace(check, failed=failed)
        quality = QualityStats(rows_quarantined=sum(s.quality.rows_quarantined for s in per_flow.values()),
                               rows_dropped=sum(s.quality.rows_dropped for s in per_flow.values()),
                               checks=list(checks.values()))
        return cls(rows_written=sum(s.rows_written for s in per_flow.values()), quality=quality,
                   flows={name: {"rows_written": s.rows_written, "rows_quarantined": s.quality.rows_quarantined,
                                 "rows_dropped": s.quality.rows_dropped} for name, s in per_flow.items()})

    @classmethod
    def observed(cls, values: dict[str, Any], checked: CheckedFrame | None) -> "WriteStats":
        """From observed counts: rows kept in the table = rows seen - quarantined - dropped."""
        quality = checked.stats(values) if checked else QualityStats()
        rows = int(values.get("rows", 0)) - quality.rows_quarantined - quality.rows_dropped
        return cls(rows_written=rows, quality=quality)


class Materializer:
    """Applies a table's checks and writes the outcome through the catalog, per its on_error."""

    def __init__(self, store: TableStore, expectations: Expectations):
        self.store = store
        self.expectations = expectations

    def materialize(self, table: TableConfig, df: DataFrame, accept: Accept | None = None,
                    output: Output = MaterializedView()) -> WriteStats:
        """Write `df` as its output kind asks (`WRITERS`: a materialized view is replaced, a streaming
        table gets what is new appended) and say what was written. `accept` may refuse the write once
        the data is computed, before any table changes."""
        write = WRITERS[output]
        if df.isStreaming != output.reads_stream:
            raise RunError(Problem(
                f"the transformation returned a {'streaming' if df.isStreaming else 'batch'} DataFrame, "
                f"but the table is planned as a {output.label}", table=table.name, key="output",
                value=output.kind, hint="read streams only from a source the plan streams (--mode streaming)"))
        return write(self, table, df, self.expectations.apply(table, df), accept)

    def replace_flows(self, table: TableConfig, flows: list[tuple[TableConfig, DataFrame]],
                      accept: Accept | None = None) -> WriteStats:
        """A table with `flows:` in batch mode: the union of its flows' rows replaces it, each flow's
        rows checked as its `reading` config says (the table's checks, and the implicit
        `malformed_record` of a flow whose source has one)."""
        checked = [self.expectations.apply(reading, df) for reading, df in flows]
        union = union_by_name([df if c is None else c.df for (_, df), c in zip(flows, checked)])
        found = [c for c in checked if c is not None]
        if not found:
            return self._replace(table, union, None, accept)
        specs = tuple(dict.fromkeys(spec for c in found for spec in c.checks))
        return self._replace(table, union, CheckedFrame(union, found[0].on_error, specs), accept)

    def _replace(self, table: TableConfig, df: DataFrame, checked: CheckedFrame | None,
                 accept: Accept | None) -> WriteStats:
        """The table (and its quarantine) replaced by this run's rows, from one computation."""
        if checked is None:
            self.store.write_table(table, df, accept)
            return WriteStats(rows_written=self.store.count(table.name), quality=QualityStats())
        with self._checked_once(table, checked, accept) as (stored, values):
            if checked.on_error is OnError.QUARANTINE:
                self.store.write_split(table, stored, QUARANTINE_FLAG, quarantine_config(table),
                                       main_drop=(ERRORS,))
            else:  # drop: the failing rows go; fail: there are none
                self.store.write_table(table, stored.where(f"NOT `{QUARANTINE_FLAG}`")
                                       .drop(QUARANTINE_FLAG, ERRORS))
        return WriteStats.observed(values, checked)

    @contextmanager
    def _checked_once(self, table: TableConfig, checked: CheckedFrame,
                      accept: Accept | None) -> Iterator[tuple[DataFrame, dict[str, Any]]]:
        """The checked rows computed once (staged, flagged by `QUARANTINE_FLAG`) and their counts,
        once the policy and `accept` allow writing: under on_error: fail a failing row raises here."""
        flagged = checked.df.withColumn(QUARANTINE_FLAG, checked.has_errors)
        with self.store.staged_with(table, flagged, [F.count(F.lit(1)).alias("rows"), *checked.metrics()]) \
                as (stored, values):
            if checked.on_error is OnError.FAIL and values[CheckedFrame.ERROR_ROWS]:
                raise failure(table, checked, values)
            (accept or (lambda: None))()
            yield stored, values

    def _apply_changes(self, table: TableConfig, feed: DataFrame, checked: CheckedFrame | None,
                       accept: Accept | None) -> WriteStats:
        """The change feed's events that pass the checks applied to the target by key and sequence
        (`cdc:`); events failing an error-level check go to the quarantine and never reach it."""
        spec = table.cdc
        assert spec is not None
        return self._keep_by_key(table, spec, feed, checked, accept, lambda valid: valid,
                                 lambda events: apply_changes(events, spec, table=table.name, check=False))

    def _apply_snapshots(self, table: TableConfig, rows: DataFrame, checked: CheckedFrame | None,
                         accept: Accept | None) -> WriteStats:
        """The snapshot's rows that pass the checks, diffed with the previous snapshot into change events
        (`snapshot_cdc:`). Without `version_by` the input is one snapshot, versioned by when it is taken.
        A row failing an error-level check is missing from the snapshot: its key is deleted."""
        spec = table.snapshot_cdc
        assert spec is not None
        version = spec.version_by or SNAPSHOT_VERSION
        taken = datetime.now(timezone.utc)

        def events_of(valid: DataFrame) -> DataFrame:
            snapshot = valid if spec.version_by else valid.withColumn(version, F.lit(taken))
            return snapshot_events(snapshot, spec, version=version, versions=() if spec.version_by else (taken,),
                                   applied=self.store.cdc_events(table), table=table.name)

        return self._keep_by_key(table, spec, rows, checked, accept, events_of,
                                 lambda events: apply_snapshot_events(events, spec, table=table.name, check=False))

    def _keep_by_key(self, table: TableConfig, spec: CdcSpec | SnapshotCdcSpec, rows: DataFrame,
                     checked: CheckedFrame | None, accept: Accept | None,
                     events_of: Callable[[DataFrame], DataFrame],
                     target_of: Callable[[DataFrame], DataFrame]) -> WriteStats:
        """A CDC target's write: the rows passing the checks become change events (`events_of`), added
        to the stored ones once `check_changes` passes them, and the target is `target_of(every event)`;
        failing rows are quarantined.
        `rows_written` counts the events new to this run; type 2 also counts the versions they opened."""
        def apply(valid: DataFrame) -> dict[str, int]:
            grown: list[int] = []  # type 2: history rows are only ever added, so the growth is what opened
            changes = self.store.apply_changes(
                table, events_of(valid), target_of, lambda new: change_counts(new, spec),
                lambda new, applied: check_changes(new, spec, applied=applied, table=table.name),
                by_key=tuple(spec.keys) if spec.applies_per_key else (),
                grown=grown.append if spec.stored_as_scd_type == 2 else None)
            if grown:
                changes["versions_opened"] = grown[0]
            return changes

        if checked is None:
            (accept or (lambda: None))()
            changes, quality = apply(rows), QualityStats()
        else:
            with self._checked_once(table, checked, accept) as (stored, values):
                if checked.on_error is OnError.QUARANTINE:
                    self.store.write_table(quarantine_config(table), stored.where(f"`{QUARANTINE_FLAG}`")
                                           .drop(QUARANTINE_FLAG))
                changes = apply(stored.where(f"NOT `{QUARANTINE_FLAG}`").drop(QUARANTINE_FLAG, *RESULT_COLUMNS))
            quality = checked.stats(values)
        return WriteStats(rows_written=events_applied(changes), quality=quality, changes=changes)

    def _append_stream(self, table: TableConfig, stream: DataFrame, checked: CheckedFrame | None,
                       accept: Accept | None = None, flow: str | None = None) -> WriteStats:
        """Each micro-batch is checked once, then its valid rows are appended to the table and its
        failing rows to the quarantine table; `flow`: one of the table's flows (its own checkpoint)."""
        write_batch, totals = self._batch_writer(table, checked)
        self.store.for_each_batch(table, stream if checked is None else checked.df, write_batch,
                                  companions=(quarantine_config(table),) if checked else (), flow=flow)
        return WriteStats.observed(totals, checked)

    def append_flow(self, table: TableConfig, flow: AppendFlow, reading: TableConfig, df: DataFrame,
                    accept: Accept | None = None) -> WriteStats:
        """One of the table's `flows:`: its new rows (all of them, a single time, for a `once` backfill),
        checked as `reading` (the table's checks on the flow's input) and appended to the table and its
        quarantine."""
        checked = self.expectations.apply(reading, df)
        if not flow.once:
            return self._append_stream(table, df, checked, accept, flow=flow.name)
        write_batch, totals = self._batch_writer(table, checked)
        (accept or (lambda: None))()
        self.store.append_once(table, flow.name, df if checked is None else checked.df, write_batch,
                               companions=(quarantine_config(table),) if checked else ())
        return WriteStats.observed(totals, checked)

    def _batch_writer(self, table: TableConfig, checked: CheckedFrame | None
                      ) -> tuple[Callable[[DataFrame, MicroBatch], None], dict[str, int]]:
        """What appends one micro-batch (checked once) to the table and its quarantine, and the counts
        it adds up over the batches."""
        quarantine = quarantine_config(table)
        totals: dict[str, int] = {}

        def write_batch(batch: DataFrame, micro: MicroBatch) -> None:
            if checked is None:
                values: dict[str, Any] = {"rows": batch.count()}
                self.store.append(table, batch, micro)
            else:
                values = batch.agg(F.count(F.lit(1)).alias("rows"), *checked.metrics()).first().asDict()
                if checked.on_error is OnError.FAIL and values[CheckedFrame.ERROR_ROWS]:
                    raise failure(table, checked, values)
                self.store.append(table, batch.where(~checked.has_errors).drop(ERRORS), micro)
                if checked.on_error is OnError.QUARANTINE and (  # no failing row: no empty commit (a job, a version)
                        values[CheckedFrame.ERROR_ROWS] or micro.replace or not self.store.exists(quarantine.name)):
                    self.store.append(quarantine, batch.where(checked.has_errors), micro)
            for key, value in values.items():
                totals[key] = totals.get(key, 0) + int(value or 0)

        return write_batch, totals


Writer = Callable[[Materializer, TableConfig, DataFrame, Optional[CheckedFrame], Optional[Accept]], WriteStats]

# output kind -> how the Spark runner materializes it
WRITERS: OutputHandlers[Writer] = OutputHandlers("Spark runner's materializer", {
    MaterializedView: Materializer._replace,
    StreamingTable: Materializer._append_stream,
    CdcTarget: Materializer._apply_changes,
    SnapshotCdcTarget: Materializer._apply_snapshots,
})


def failure(table: TableConfig, checked: CheckedFrame, values: dict[str, Any]) -> QualityFailure:
    """The error of a table whose rows failed error-level checks under on_error: fail."""
    failed = [f"{c.name}: {c.failed}" for c in checked.stats(values).checks
              if c.failed and c.criticality is Criticality.ERROR]
    return QualityFailure(Problem(
        f"{values.get(CheckedFrame.ERROR_ROWS)} row(s) failed error-level checks ({', '.join(failed)}); "
        "on_error is 'fail', so the table was not written", table=table.name, key="on_error"))
