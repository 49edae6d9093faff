"""A transformation that fails inside a pipeline query function, told in the user's terms.

Pipelines (Lakeflow on Databricks, Spark Declarative Pipelines locally) call each query function once,
at registration, to build its plan: the function may build a DataFrame but not look at it (`.columns`,
`.schema`) or run it (`.count()`, `.collect()`, `.toPandas()`). Spark refuses either with an internal
error class; this names the table, the transformation's file and line, what it did, and the fix.
"""
from __future__ import annotations

import traceback
from typing import Callable

from pipelines.core.errors import EngineError, Problem, RunError, code_file, error_cause, user_location

# DataFrame members that analyze the plan (look at its schema) or run it.
ANALYZING = frozenset({"columns", "schema", "dtypes", "printSchema", "explain", "isEmpty", "inputFiles",
                       "sameSemantics", "semanticHash"})
RUNNING = frozenset({"count", "collect", "toPandas", "toArrow", "take", "head", "first", "tail", "show",
                     "toLocalIterator", "foreach", "foreachPartition", "toJSON", "cache", "persist",
                     "checkpoint", "localCheckpoint"})
_PIPELINE_ANALYSIS = "ATTEMPT_ANALYSIS_IN_PIPELINE_QUERY_FUNCTION"
_SESSION_MUTATION = "SESSION_MUTATION_IN_DECLARATIVE_PIPELINE"


def query_function_error(table: str, function: Callable[..., object], exc: BaseException) -> EngineError:
    """The readable error for `exc`, raised by `function` (table `table`'s transformation) while a
    pipeline built its plan."""
    file, line, api = _user_call_site(function, exc)
    where = f"{file}:{line}" if line else user_location(exc, [file]) or file
    condition = _condition(exc)
    if api in ANALYZING or api in RUNNING or condition in (_PIPELINE_ANALYSIS, _SESSION_MUTATION):
        did = (f"reads DataFrame.{api}, which analyzes the query" if api in ANALYZING
               else f"calls DataFrame.{api}(), which runs a query" if api in RUNNING
               else "analyzes or runs a query")
        return RunError(Problem(
            f"the transformation {did} inside a pipeline query function; a pipeline builds each table's "
            "plan first and runs it later, so the function may only build a DataFrame",
            file=where, table=table, key="transformation",
            hint="name the columns you need instead of reading .columns/.schema, and leave counts and "
                 "checks to `expectations` (they run in the pipeline); such code runs only on --runner spark"))
    return RunError(Problem(f"the transformation failed while the pipeline built its plan: {error_cause(exc)}",
                            file=where, table=table, key="transformation"))


def _user_call_site(function: Callable[..., object], exc: BaseException) -> tuple[str, int | None, str | None]:
    """The transformation's file, the line of the innermost frame in it, and the DataFrame member it
    called there (the first frame after it in a pyspark file)."""
    file = code_file(function) or str(getattr(function, "__module__", "?"))
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [index for index, frame in enumerate(frames) if frame.filename == file]
    if not inside:
        return file, None, None
    last = inside[-1]
    api = next((frame.name for frame in frames[last + 1:] if "pyspark" in frame.filename), None)
    return file, frames[last].lineno, api


def _condition(exc: BaseException) -> str | None:
    getter = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    try:
        return getter() if callable(getter) else None
    except Exception:  # noqa: BLE001 - a malformed error object has no condition to report
        return None
