"""The engine's words as types: check criticality, what happens to failing rows, a table's status,
and the names of DQX's result columns every runner writes."""
from __future__ import annotations

from enum import Enum

ERRORS = "_errors"  # DQX's result columns: failed error-level checks, failed warn-level checks
WARNINGS = "_warnings"
RESULT_COLUMNS = (ERRORS, WARNINGS)


class _Word(str, Enum):
    """A string enum: compares equal to, formats and serializes as its value."""

    def __str__(self) -> str:
        return str(self.value)


class Criticality(_Word):
    """DQX's criticality: an `error` check decides the row's fate, a `warn` check only records."""

    ERROR = "error"
    WARN = "warn"


class OnError(_Word):
    """What a table does with rows failing an error-level check."""

    QUARANTINE = "quarantine"  # keep them apart, in {table}_quarantine, with their _errors
    DROP = "drop"  # leave them out, counted
    FAIL = "fail"  # fail the table; the previous version stays


class TableStatus(_Word):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"

QUARANTINE_SUFFIX = "_quarantine"  # {table}_quarantine: the rows that failed an error-level check
CDC_EVENTS_SUFFIX = "__ldp_cdc_events"  # a CDC target's events so far: the engine's, never shown
LANDING_SUFFIX = "__ldp_landing"  # an incremental JDBC source's rows landed so far, read by its table
CORRUPT_RECORD = "_corrupt_record"  # the raw text of a csv/json record Spark could not parse
MALFORMED_CHECK = "malformed_record"  # the implicit error-level check on it


def unquoted(name: str) -> str:
    """A qualified name without its backticks, as `spark.catalog` methods and reports take it."""
    return name.replace("`", "")


def landing_name(table: str) -> str:
    """The landing table of `table`'s (or a flow's) source that `lands`: unqualified, in its schema."""
    return table + LANDING_SUFFIX
