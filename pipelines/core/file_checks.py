"""Landing data checked before Spark starts: a file source's local folder exists, and its reader
options are ones Spark knows for the format, with values Spark will accept.

Spark ignores an option it does not know (`headers: true` reads the header as data) and fails only
at the read on a bad value (`header: yes` is `IllegalArgumentException: header flag can be true or
false`), deep in a Py4J trace. Both are cheap to catch here, located in config.yml. The option
table mirrors pyspark 4.2's `DataFrameReader.csv/json/parquet` keyword arguments and the generic
file source options; names compare case-insensitively, as Spark's do. `cloudFiles.*` (Auto Loader)
and `spark.*`/`fs.*` (Hadoop) options pass unchecked: they belong to other layers.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from .errors import Problem
from .vocabulary import MALFORMED_CHECK


class FilesSource(Protocol):
    """What these checks read of a `type: files` source spec (`core.sources.FilesSource`), which
    asks this module for its checks: no import back, so the specs and their checks stay acyclic."""

    format: str
    path: str
    options: Mapping[str, Any]

    @property
    def is_runtime_path(self) -> bool: ...

    def resolved_path(self, base_dir: Path) -> str: ...

Check = Callable[[Any], str | None]  # None when the value is fine, else what is expected


def _boolean(value: Any) -> str | None:
    ok = isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false"))
    return None if ok else "true or false"


def _integer(value: Any) -> str | None:
    ok = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().lstrip("-").isdigit())
    return None if ok else "an integer"


def _fraction(value: Any) -> str | None:
    try:
        ok = not isinstance(value, bool) and 0 < float(value) <= 1
    except (TypeError, ValueError):
        ok = False
    return None if ok else "a number in (0, 1]"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string (quote it in YAML)"


def _character(value: Any) -> str | None:
    return None if isinstance(value, str) and len(value) == 1 else "a single character"


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, str) and value.upper() in choices
        return None if ok else "one of " + ", ".join(choices)
    return check


_MODE = _one_of("PERMISSIVE", "DROPMALFORMED", "FAILFAST")
_REBASE = _one_of("EXCEPTION", "CORRECTED", "LEGACY")

_FILE_OPTIONS: dict[str, Check] = {  # every file format, batch and streaming
    "pathGlobFilter": _text, "recursiveFileLookup": _boolean, "modifiedBefore": _text,
    "modifiedAfter": _text, "ignoreCorruptFiles": _boolean, "ignoreMissingFiles": _boolean,
    "compression": _text, "maxFilesPerTrigger": _integer, "maxBytesPerTrigger": _text,
    "latestFirst": _boolean, "fileNameOnly": _boolean, "maxFileAge": _text, "cleanSource": _text,
    "sourceArchiveDir": _text, "maxCachedFiles": _integer, "discardCachedInputRatio": _fraction,
}
_TEXT_PARSING: dict[str, Check] = {  # csv and json
    "encoding": _text, "charset": _text, "mode": _MODE, "columnNameOfCorruptRecord": _text,
    "dateFormat": _text, "timestampFormat": _text, "timestampNTZFormat": _text,
    "enableDateTimeParsingFallback": _boolean, "multiLine": _boolean, "lineSep": _text,
    "samplingRatio": _fraction, "locale": _text, "timeZone": _text, "singleVariantColumn": _text,
}
OPTIONS: Mapping[str, Mapping[str, Check]] = {
    "csv": {**_FILE_OPTIONS, **_TEXT_PARSING,
            "sep": _text, "delimiter": _text, "quote": _character, "quoteAll": _boolean,
            "escape": _character, "escapeQuotes": _boolean, "comment": _character, "header": _boolean,
            "inferSchema": _boolean, "preferDate": _boolean, "enforceSchema": _boolean,
            "ignoreLeadingWhiteSpace": _boolean, "ignoreTrailingWhiteSpace": _boolean,
            "nullValue": _text, "nanValue": _text, "positiveInf": _text, "negativeInf": _text,
            "maxColumns": _integer, "maxCharsPerColumn": _integer, "maxMalformedLogPerPartition": _integer,
            "charToEscapeQuoteEscaping": _character, "emptyValue": _text,
            "unescapedQuoteHandling": _one_of("STOP_AT_CLOSING_QUOTE", "BACK_TO_DELIMITER",
                                              "STOP_AT_DELIMITER", "SKIP_VALUE", "RAISE_ERROR")},
    "json": {**_FILE_OPTIONS, **_TEXT_PARSING,
             "primitivesAsString": _boolean, "prefersDecimal": _boolean, "allowComments": _boolean,
             "allowUnquotedFieldNames": _boolean, "allowSingleQuotes": _boolean,
             "allowNumericLeadingZeros": _boolean, "allowNumericLeadingZero": _boolean,
             "allowBackslashEscapingAnyCharacter": _boolean, "allowUnquotedControlChars": _boolean,
             "allowNonNumericNumbers": _boolean, "dropFieldIfAllNull": _boolean, "inferTimestamp": _boolean,
             "ignoreNullFields": _boolean, "useUnsafeRow": _boolean},
    "parquet": {**_FILE_OPTIONS, "mergeSchema": _boolean, "datetimeRebaseMode": _REBASE,
                "int96RebaseMode": _REBASE},
    "orc": {**_FILE_OPTIONS, "mergeSchema": _boolean},
    "avro": {**_FILE_OPTIONS, "avroSchema": _text, "ignoreExtension": _boolean, "mode": _MODE,
             "datetimeRebaseMode": _REBASE, "positionalFieldMatching": _boolean},
    "text": {**_FILE_OPTIONS, "wholetext": _boolean, "lineSep": _text},
    "binaryFile": dict(_FILE_OPTIONS),
    "xml": {**_FILE_OPTIONS, **_TEXT_PARSING,
            "rowTag": _text, "rootTag": _text, "excludeAttribute": _boolean, "attributePrefix": _text,
            "valueTag": _text, "inferSchema": _boolean, "ignoreSurroundingSpaces": _boolean,
            "rowValidationXSDPath": _text, "ignoreNamespace": _boolean, "wildcardColName": _text,
            "nullValue": _text, "prefersDecimal": _boolean},
}
_PASS_THROUGH = ("cloudfiles.", "spark.", "fs.")


def unflagged_malformed_warning(table: str, source: FilesSource) -> Problem:
    """csv/json without a declared schema and without an explicit `mode` or `columnNameOfCorruptRecord`:
    Spark merges its malformed records silently into rows."""
    return Problem(f"malformed {source.format} records cannot be told apart without a declared schema: "
                   "Spark's default (PERMISSIVE) merges them into rows with nulls or shifted values",
                   table=table, key="source.schema",
                   hint=f"declare `schema:` (DDL) to quarantine them as check '{MALFORMED_CHECK}', or set "
                        "`options: {mode: FAILFAST}` (fail the read) or DROPMALFORMED (drop them)")


def file_source_problems(base_dir: Path, table: str, source: FilesSource) -> list[Problem]:
    """A files source's problems: its local folder is missing, or its options are unknown, ill-typed
    or incomplete."""
    return _path_problems(base_dir, table, source) + option_problems(table, source) + _required(table, source)


def _required(table: str, source: FilesSource) -> list[Problem]:
    """xml needs the element that holds one row: without `rowTag` Spark reads nothing useful."""
    if source.format != "xml" or any(key.lower() == "rowtag" for key in source.options):
        return []
    return [Problem("xml files need options.rowTag, the element that holds one row", table=table,
                    key="source.options.rowTag", hint="e.g. options: {rowTag: order}")]


def _path_problems(base_dir: Path, table: str, source: FilesSource) -> list[Problem]:
    """A relative path is the project's own landing folder: it must exist. URIs and absolute paths
    (`/Volumes/...`, `s3://...`) name the runtime's storage and are left to it."""
    if source.is_runtime_path:
        return []
    resolved = Path(source.resolved_path(base_dir))
    if resolved.exists() or any(ch in source.path for ch in "*?["):  # a glob is resolved by Spark
        return []
    return [Problem(f"the source path does not exist: {resolved}", table=table, key="source.path",
                    value=source.path, hint="paths are relative to config.yml's folder")]


def option_problems(table: str, source: FilesSource) -> list[Problem]:
    """Unknown option names (with the nearest known one) and values Spark would refuse at the read."""
    known = OPTIONS.get(source.format, {})
    by_lower = {name.lower(): name for name in known}
    problems = []
    for key, value in source.options.items():
        if key.lower().startswith(_PASS_THROUGH):
            continue
        name = by_lower.get(key.lower())
        if name is None:
            close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
            hint = f"did you mean '{by_lower[close[0]]}'?" if close else (
                f"see Spark's {source.format} data source options")
            problems.append(Problem(f"unknown {source.format} reader option '{key}'", table=table,
                                    key=f"source.options.{key}", hint=hint))
            continue
        expected = known[name](value)
        if expected is not None:
            problems.append(Problem(f"{source.format} reader option '{key}' must be {expected}", table=table,
                                    key=f"source.options.{key}", value=value))
    return problems
