"""Materializing a table under its data-quality policy: the one place that decides where failing rows go.

`on_error: quarantine` splits one computation into the table and `{table}_quarantine` (one write),
`drop` leaves failing rows out, `fail` refuses the write; the catalog (`TableStore`) only writes. Rows
and per-check failures are counted by an Observation during the write itself (no extra pass), except
for `fail` on a format written in place, which cannot be undone and so is checked first.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from pipelines.catalog.storage import TableStore
from pipelines.core.config import TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.vocabulary import ERRORS, Criticality, OnError

from .enforce import CheckedFrame, Expectations, QualityStats, quarantine_config

QUARANTINE_FLAG = "_ldp_quarantined"


class QualityFailure(RunError):
    """on_error: fail and some rows failed an error-level check (the table is not written)."""


@dataclass(frozen=True)
class WriteStats:
    rows_written: int
    quality: QualityStats

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

    def materialize(self, table: TableConfig, df: DataFrame, accept: Callable[[], None] | None = None
                    ) -> WriteStats:
        """Write `df` (batch: replace; streaming: append what is new) and say what was written.
        `accept` may refuse the new version once it is written (see TableStore.write_table)."""
        checked = self.expectations.apply(table, df)
        if df.isStreaming:
            return self._append_stream(table, df, checked)
        observation = Observation(f"write_{table.name}_{uuid.uuid4().hex[:8]}")
        source = checked.df if checked is not None else df
        metrics = [F.count(F.lit(1)).alias("rows")] + (checked.metrics() if checked else [])
        observed = source.observe(observation, *metrics)
        if checked is None:
            self.store.write_table(table, observed, accept)
        elif checked.on_error is OnError.DROP:
            self.store.write_table(table, observed.where(~checked.has_errors).drop(ERRORS), accept)
        elif checked.on_error is OnError.FAIL:
            self._write_unless_errors(table, observed, checked, observation, accept)
        else:
            self.store.write_split(table, observed.withColumn(QUARANTINE_FLAG, checked.has_errors),
                                   QUARANTINE_FLAG, quarantine_config(table), main_drop=(ERRORS,),
                                   accept=accept)
        return WriteStats.observed(observation.get, checked)

    def _write_unless_errors(self, table: TableConfig, df: DataFrame, checked: CheckedFrame,
                             observation: Observation, accept: Callable[[], None] | None) -> None:
        """on_error: fail — a row failing an error-level check fails the table; nothing is replaced."""
        accept = accept or (lambda: None)
        if not self.store.can_discard(table):  # written in place: count first (a second pass)
            if checked.df.where(checked.has_errors).limit(1).count():
                raise failure(table, checked, checked.df.agg(*checked.metrics()).first().asDict())
            self.store.write_table(table, df.drop(ERRORS), accept)
            return

        def no_error_rows() -> None:  # counted by the observation during the write
            if observation.get.get(CheckedFrame.ERROR_ROWS, 0):
                raise failure(table, checked, observation.get)
            accept()

        self.store.write_table(table, df.drop(ERRORS), accept=no_error_rows)

    def _append_stream(self, table: TableConfig, stream: DataFrame, checked: CheckedFrame | None
                       ) -> WriteStats:
        """Each micro-batch is checked once, then its valid rows are appended to the table and its
        failing rows to the quarantine table."""
        if checked is None:
            return WriteStats(rows_written=self.store.append_stream(table, stream), quality=QualityStats())
        quarantine = quarantine_config(table)
        totals: dict[str, int] = {}

        def write_batch(batch: DataFrame) -> None:
            values = batch.agg(F.count(F.lit(1)).alias("rows"), *checked.metrics()).first().asDict()
            if checked.on_error is OnError.FAIL and values[CheckedFrame.ERROR_ROWS]:
                raise failure(table, checked, values)
            self.store.append(table, batch.where(~checked.has_errors).drop(ERRORS))
            if checked.on_error is OnError.QUARANTINE:
                self.store.append(quarantine, batch.where(checked.has_errors))
            for key, value in values.items():
                totals[key] = totals.get(key, 0) + int(value or 0)

        self.store.for_each_batch(table, checked.df, write_batch, companions=(quarantine,))
        return WriteStats.observed(totals, checked)


def failure(table: TableConfig, checked: CheckedFrame, values: dict[str, Any]) -> QualityFailure:
    """The error of a table whose rows failed error-level checks under on_error: fail."""
    failed = [f"{c.name}: {c.failed}" for c in checked.stats(values).checks
              if c.failed and c.criticality is Criticality.ERROR]
    return QualityFailure(Problem(
        f"{values.get(CheckedFrame.ERROR_ROWS)} row(s) failed error-level checks ({', '.join(failed)}); "
        "on_error is 'fail', so the table was not written", table=table.name, key="on_error"))
