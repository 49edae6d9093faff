"""The only place that patches pyspark internals, so everyday PySpark idioms work on every runner.

Three gaps of pyspark 4.x (read from 4.2.0's own sources; gated to pyspark 4, and each patch checks
that the internal it replaces still exists, else it does nothing):

- **DDL return types need a session at import.** `@F.udf("string")` and `@F.pandas_udf("string")` parse
  their type string when the decorator runs (`UserDefinedFunction._wrapped` reads the `returnType`
  property, which calls `types._parse_datatype_string`, which asks the JVM or Connect server). The
  engine imports transformation modules before any session exists, so this idiom raised
  SESSION_OR_CONTEXT_NOT_EXISTS. `install_udf_type_parsing` makes the udf modules' parser fall back,
  only when no session answers, to `parse_ddl_type`: a pure parser of the common DDL types (names,
  decimal(p,s), array<>, map<>, struct<>, `a int, b string`) whose results are tested equal to Spark's.
  Anything else still needs a session (Spark's own error).
- **Folder-mode modules are unknown to the Python workers.** A UDF is pickled by reference to its
  module; a folder module's synthetic name (`_ldp_transformations_<hash>...`) does not import on a
  worker. `pickle_by_value` registers such modules with pyspark's bundled cloudpickle.
- **Spark Connect's `GroupedData.sum/avg/mean/min/max(cols)` read the schema eagerly** (to check that
  the columns are numeric), which a pipeline query function may not do. Inside `lazy_aggregations()`
  they build the very plan Connect builds (`agg` of the same unaliased functions, so the columns keep
  Spark's names, e.g. `sum(amount)`), minus the schema lookup. Without columns (all numeric columns)
  the schema is needed: that stays Spark's error, and `pipelines.core.static_checks` flags it first.

One JVM quirk of classic (non-Connect) sessions, for any pyspark: **call sites are recorded only in a
thread where the session is the JVM's active one** (`track_call_sites`, called by the Spark runner in
each worker thread before a table's query is built).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import pyspark
from pyspark.sql.types import (ArrayType, BinaryType, BooleanType, ByteType, DataType, DateType, DecimalType,
                               DoubleType, FloatType, IntegerType, LongType, MapType, NullType, ShortType,
                               StringType, StructField, StructType, TimestampNTZType, TimestampType)

log = logging.getLogger(__name__)
SUPPORTED_MAJOR = 4
_NO_SESSION = frozenset({"SESSION_OR_CONTEXT_NOT_EXISTS", "NO_ACTIVE_OR_DEFAULT_SESSION"})
_ATOMIC: dict[str, Callable[[], DataType]] = {
    "boolean": BooleanType, "tinyint": ByteType, "byte": ByteType, "smallint": ShortType, "short": ShortType,
    "int": IntegerType, "integer": IntegerType, "bigint": LongType, "long": LongType, "float": FloatType,
    "real": FloatType, "double": DoubleType, "date": DateType, "timestamp": TimestampType,
    "timestamp_ltz": TimestampType, "timestamp_ntz": TimestampNTZType, "string": StringType,
    "binary": BinaryType, "void": NullType,
}
_DECIMAL = frozenset({"decimal", "dec", "numeric"})
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\d+)|([<>(),:]))")
_installed: set[str] = set()
_lazy = contextvars.ContextVar("ldp_lazy_aggregations", default=False)


def supported() -> bool:
    """Whether this pyspark is one whose internals these patches were read from."""
    return pyspark.__version__.split(".")[0] == str(SUPPORTED_MAJOR)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items: list[str] = []
        position = 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if not match:
                raise ValueError(text[position:])
            self.items.append(next(g for g in match.groups() if g is not None))
            position = match.end()
        self.at = 0

    def peek(self) -> str | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'a token'}, found {token}")
        self.at += 1
        return token


def parse_ddl_type(text: str) -> DataType | None:
    """`text` as Spark's DDL parser reads it, or None where this small parser does not know the form."""
    try:
        tokens = _Tokens(text)
        if len(tokens.items) > 1 and tokens.items[1] not in ("<", "("):  # `a int, b string`: a struct
            parsed: DataType = StructType(_fields(tokens))
        else:
            parsed = _type(tokens)
        return parsed if tokens.peek() is None else None
    except ValueError:
        return None


def _type(tokens: _Tokens) -> DataType:
    name = tokens.take().lower()
    if name in _ATOMIC:
        return _ATOMIC[name]()
    if name in _DECIMAL:
        if tokens.peek() != "(":
            return DecimalType(10, 0)
        tokens.take("(")
        precision, scale = int(tokens.take()), 0
        if tokens.peek() == ",":
            tokens.take(",")
            scale = int(tokens.take())
        tokens.take(")")
        return DecimalType(precision, scale)
    if name == "array":
        tokens.take("<")
        element = _type(tokens)
        tokens.take(">")
        return ArrayType(element, True)
    if name == "map":
        tokens.take("<")
        key = _type(tokens)
        tokens.take(",")
        value = _type(tokens)
        tokens.take(">")
        return MapType(key, value, True)
    if name == "struct":
        tokens.take("<")
        fields = _fields(tokens, until=">")
        tokens.take(">")
        return StructType(fields)
    raise ValueError(name)


def _fields(tokens: _Tokens, until: str | None = None) -> list[StructField]:
    fields: list[StructField] = []
    while tokens.peek() not in (until, None):
        if fields:
            tokens.take(",")
        name = tokens.take()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(name)
        if tokens.peek() == ":":
            tokens.take(":")
        fields.append(StructField(name, _type(tokens), True))
    return fields


def _sessionless(original: Callable[[str], DataType]) -> Callable[[str], DataType]:
    def parse(text: str) -> DataType:
        try:
            return original(text)
        except Exception as exc:
            condition = getattr(exc, "getCondition", lambda: None)()
            parsed = parse_ddl_type(text) if condition in _NO_SESSION else None
            if parsed is None:
                raise
            return parsed

    parse.__wrapped__ = original  # type: ignore[attr-defined]
    return parse


def install_udf_type_parsing() -> None:
    """Let udf/pandas_udf with a DDL-string return type be created before any Spark session exists."""
    if not supported():
        return
    names = ["pyspark.sql.udf"] + (["pyspark.sql.connect.udf"] if _connect_loaded() else [])
    for name in names:
        if name in _installed:
            continue
        module = _import(name)
        original = getattr(module, "_parse_datatype_string", None) if module else None
        if original is None:
            log.debug("pyspark %s: %s has no _parse_datatype_string; not patched", pyspark.__version__, name)
            continue
        module._parse_datatype_string = _sessionless(original)  # type: ignore[union-attr]
        _installed.add(name)


def _connect_loaded() -> bool:
    from pyspark.sql.utils import is_remote
    return "pyspark.sql.connect.udf" in sys.modules or is_remote()


def _import(name: str) -> ModuleType | None:
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def track_call_sites(spark: Any) -> None:
    """Make a classic (non-Connect) session the JVM's active one in the calling thread, so PySpark
    records the user's call site (`file:line`) in each DataFrame expression's query context: a Spark
    error raised later can then name the user's line. PySpark only records it where
    `SparkSession.getActiveSession()` answers, and caches a first "no" for the whole process
    (`pyspark.errors.utils._enable_debugging_cache`, e.g. a column built at import, before Spark
    started): a cached "no" is forgotten here. Without it errors lack the user's line, nothing more."""
    try:
        spark._jvm.org.apache.spark.sql.SparkSession.setActiveSession(spark._jsparkSession)
        from pyspark.errors import utils as error_utils
        if getattr(error_utils, "_enable_debugging_cache", None) is False:
            error_utils._enable_debugging_cache = None
    except Exception:  # noqa: BLE001 - errors then lack the user's line, nothing more
        log.debug("cannot make the session active in this thread", exc_info=True)


def jvm_trace(spark: Any, exc: BaseException) -> str:
    """The JVM stack trace (with its `Caused by`s) of a captured Spark error on a classic session,
    which the Python traceback leaves out; empty for other errors, on Spark Connect, or if the JVM
    cannot say."""
    origin = getattr(exc, "_origin", None)
    if origin is None or getattr(spark, "_jvm", None) is None:
        return ""
    try:
        return str(spark._jvm.org.apache.spark.util.Utils.exceptionString(origin))
    except Exception:  # noqa: BLE001 - the Python traceback still follows
        return ""


def pickle_by_value(modules: Iterable[ModuleType]) -> None:
    """Ship these modules' functions (UDFs included) to the Python workers by value, not by name."""
    from pyspark import cloudpickle

    for module in modules:
        if module.__name__ in sys.modules:
            cloudpickle.register_pickle_by_value(module)


@contextlib.contextmanager
def lazy_aggregations() -> Iterator[None]:
    """Within this block (a pipeline query function), Connect's GroupedData numeric aggregations of
    named columns do not read the schema, and `spark.sql(query, **dataframes)` builds its relation
    without executing it first."""
    _install_lazy_numeric_agg()
    _install_lazy_sql()
    token = _lazy.set(True)
    try:
        yield
    finally:
        _lazy.reset(token)


def _install_lazy_numeric_agg() -> None:
    if "connect.group" in _installed or not supported():
        return
    module = _import("pyspark.sql.connect.group")
    grouped = getattr(module, "GroupedData", None)
    original = getattr(grouped, "_numeric_agg", None)
    if grouped is None or original is None or not hasattr(module, "F"):
        log.debug("pyspark %s: no connect GroupedData._numeric_agg; not patched", pyspark.__version__)
        return

    functions = module.F  # type: ignore[union-attr]  # Connect's own `functions.builtin`, as it uses

    def _numeric_agg(self: Any, function: str, cols: list[str]) -> Any:
        if not _lazy.get() or not cols:
            return original(self, function, cols)
        return self.agg(*[functions._invoke_function(function, functions.col(c)) for c in cols])

    grouped._numeric_agg = _numeric_agg
    _installed.add("connect.group")


def _install_lazy_sql() -> None:
    """Connect's `SparkSession.sql` sends the query to the server before returning (commands run
    there); for a SELECT the result is the same SQL relation, built then without a round trip. In a
    pipeline query function that round trip analyzes the query before its upstream tables exist (SQL
    definitions, `pipelines.core.sql_definitions`). Inside `lazy_aggregations()` the relation is
    built directly, DataFrame arguments as the same named subqueries; positional or named `args`
    keep Spark's own path."""
    if "connect.sql" in _installed or not supported():
        return
    session_module = _import("pyspark.sql.connect.session")
    plan_module = _import("pyspark.sql.connect.plan")
    formatter_module = _import("pyspark.sql.connect.sql_formatter")
    session = getattr(session_module, "SparkSession", None)
    needed = [getattr(plan_module, "SQL", None), getattr(plan_module, "SubqueryAlias", None),
              getattr(formatter_module, "SQLStringFormatter", None), getattr(session_module, "DataFrame", None)]
    if session is None or None in needed:
        log.debug("pyspark %s: no connect SQL relation; spark.sql not patched", pyspark.__version__)
        return
    relation, alias, formatter_class, frame = needed
    original = session.sql

    def sql(self: Any, sqlQuery: str, args: Any = None, **kwargs: Any) -> Any:
        if not _lazy.get() or args is not None:
            return original(self, sqlQuery, args, **kwargs)
        views = []
        if kwargs:
            formatter = formatter_class(self)
            sqlQuery = formatter.format(sqlQuery, **kwargs)
            views = [alias(df._plan, name) for df, name in formatter._temp_views]
        return frame(relation(sqlQuery, None, None, views), self)

    sql.__doc__ = original.__doc__
    session.sql = sql
    _installed.add("connect.sql")
