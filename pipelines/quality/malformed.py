"""Malformed csv/json records as the implicit error-level check `malformed_record`.

A csv/json source with a declared schema is read with `columnNameOfCorruptRecord=_corrupt_record`
(`pipelines.catalog.sources`): a record Spark cannot parse keeps its raw text there. Here a row whose
`_corrupt_record` is set gets one more DQX result in `_errors` (name `malformed_record`, the raw text in
its message), so it follows `on_error` exactly as a failing check does (quarantined, dropped or failing
the table) and is counted with the checks; `_corrupt_record` itself leaves the checked frame, so neither
the table nor its quarantine gains a column. The same function serves every runner.
"""
from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.core.config import TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.source_checks import CORRUPT_RECORD, MALFORMED_CHECK, checks_malformed_records
from pipelines.core.vocabulary import ERRORS, WARNINGS

from . import dqx_adapter

__all__ = ["CORRUPT_RECORD", "MALFORMED_CHECK", "checks_malformed_records", "flag_malformed", "native_expectation"]

_OTHERS = f"`^(?!({CORRUPT_RECORD}|{ERRORS}|{WARNINGS})$).+$`"


def flag_malformed(table: TableConfig, checked: DataFrame, run_id: str | None, file: str,
                   analyze: bool = True) -> DataFrame:
    """`checked` (with DQX's `_errors`/`_warnings`) with `malformed_record` added to `_errors` where
    `_corrupt_record` is set, and without `_corrupt_record`. Lazy (column regexes) when not `analyze`."""
    if analyze and CORRUPT_RECORD not in checked.columns:
        raise RunError(Problem(
            f"the transformation's result has no {CORRUPT_RECORD} column, so malformed source records "
            f"cannot be quarantined", file=file, table=table.name, key="source.schema",
            hint=f"keep {CORRUPT_RECORD} in {table.name}'s result (withColumn / select('*', ...) keep it; "
                 "the engine drops it from the table), or choose Spark's handling with "
                 "source.options.mode (PERMISSIVE keeps malformed records unflagged, DROPMALFORMED, FAILFAST)"))
    raw = F.col(CORRUPT_RECORD)
    others = checked.colRegex(_OTHERS)
    # Spark refuses a query on raw csv/json files that reads only the corrupt-record column (counting the
    # failures, as the runners do, is one): this always-true comparison, evaluated only on malformed rows,
    # makes every such query read the other columns too. The optimizer cannot fold it away.
    malformed = raw.isNotNull() & (F.xxhash64(F.lit(0), others) != F.xxhash64(F.lit(0), others) + 1)
    result = F.array(_result(table, raw, run_id)).cast(dqx_adapter.result_schema())
    errors = (F.when(malformed & F.col(ERRORS).isNull(), result)
              .when(malformed, F.concat(F.col(ERRORS), result))
              .otherwise(F.col(ERRORS)))
    return checked.select(others, errors.alias(ERRORS), F.col(WARNINGS))


def _result(table: TableConfig, raw: Column, run_id: str | None) -> Column:
    """One DQX result struct (same fields, same types) for a malformed record; its message holds the raw text."""
    source_format = table.source.record_format if table.source is not None else "source"
    return F.struct(
        F.lit(MALFORMED_CHECK).alias("name"),
        F.concat(F.lit(f"malformed {source_format} record (it does not parse with the declared schema): "),
                 raw).alias("message"),
        F.array(F.lit(CORRUPT_RECORD)).alias("columns"),
        F.lit(None).cast("string").alias("filter"),
        F.lit(MALFORMED_CHECK).alias("function"),
        F.current_timestamp().alias("run_time"),
        F.lit(run_id).cast("string").alias("run_id"),
        F.create_map().cast("map<string,string>").alias("user_metadata"),
        F.lit(None).cast("string").alias("rule_fingerprint"),
        F.lit(None).cast("string").alias("rule_set_fingerprint"),
        F.lit(False).alias("skipped"))


def native_expectation() -> dict[str, str]:
    """The check as a native expectation on the checked dataset (after `_corrupt_record` is dropped)."""
    return {MALFORMED_CHECK: f"NOT array_contains(coalesce({ERRORS}.name, array()), '{MALFORMED_CHECK}')"}


def engine_run_id(engine: Any) -> str | None:
    """The run id DQX stamps on its own results (its engine's core holds it)."""
    return getattr(getattr(engine, "_engine", None), "run_id", None)
