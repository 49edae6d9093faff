"""Schema contracts: a table's declared `columns:`, how strictly they bind (`contract:`), and its row filter.

Pure: no Spark here. Declared types are canonicalized to the strings Spark itself prints for a column's
type (`DataType.simpleString()`, SQL's `typeof`): `integer` -> `int`, `long` -> `bigint`, `decimal` ->
`decimal(10,0)`, `struct<a int>` -> `struct<a:int>`. So a contract compares with a DataFrame's schema by
plain string equality, eagerly on the Spark runner and, inside a pipeline's query functions (where the
schema may not be read), through `typeof`, which Spark folds to a constant. `contract_problems` is the
one comparison every runner reports with.
"""
from __future__ import annotations

import difflib
import re
from enum import Enum
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from .sql import sql_identifier, sql_literal

__all__ = ["ColumnSpec", "ContractMode", "RowFilter", "canonical_type", "contract_problems", "schema_ddl", "spark_type"]

_SIMPLE = {
    "string": "string", "varchar": "string", "char": "string",
    "int": "int", "integer": "int", "bigint": "bigint", "long": "bigint",
    "smallint": "smallint", "short": "smallint", "tinyint": "tinyint", "byte": "tinyint",
    "double": "double", "float": "float", "real": "float",
    "boolean": "boolean", "bool": "boolean", "binary": "binary", "date": "date",
    "timestamp": "timestamp", "timestamp_ltz": "timestamp", "timestamp_ntz": "timestamp_ntz",
    "variant": "variant",
}
_DECIMALS = {"decimal", "dec", "numeric"}
_TOKEN = re.compile(r"\s*(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),:])")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FUNCTION = re.compile(rf"^{_NAME}(\.{_NAME}){{1,2}}$")  # schema.function or catalog.schema.function
_ROW_FILTER = re.compile(rf"^\s*({_NAME}(?:\.{_NAME}){{1,2}})\s+ON\s*\(\s*([^)]*?)\s*\)\s*$", re.IGNORECASE)


class ContractMode(str, Enum):
    """How the declared columns bind the transformation's output."""

    ENFORCED = "enforced"  # exactly these columns, of these types (and non-null where declared so)
    ADDITIVE = "additive"  # at least these; new columns pass and are reported
    OFF = "off"  # documentation only: comments and tags, nothing checked

    def __str__(self) -> str:
        return self.value


def canonical_type(text: str) -> str:
    """`text` as Spark prints the type (`typeof`); ValueError naming the part it cannot read."""
    tokens = _tokens(text)
    canonical, end = _type(tokens, 0, text)
    if end != len(tokens):
        raise ValueError(f"type {text!r} has unexpected {tokens[end]!r} after {canonical!r}")
    return canonical


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"type {text!r}: cannot read {text[position:].strip()!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _type(tokens: list[str], at: int, text: str) -> tuple[str, int]:
    word = tokens[at].lower() if at < len(tokens) else ""
    if word in ("array", "map", "struct"):
        return _nested(word, tokens, at + 1, text)
    if word in _DECIMALS:
        return _decimal(tokens, at + 1, text)
    if word in ("varchar", "char") and tokens[at + 1:at + 2] == ["("]:
        _expect(tokens, at + 3, ")", text)
        return "string", at + 4
    if word in _SIMPLE:
        return _SIMPLE[word], at + 1
    known = sorted({*_SIMPLE.values(), "decimal", "array", "map", "struct"})
    close = difflib.get_close_matches(word, known, n=1)
    raise ValueError(f"unknown type {word or text!r}" + (f" in {text!r}" if word != text.strip().lower() else "")
                     + (f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"))


def _decimal(tokens: list[str], at: int, text: str) -> tuple[str, int]:
    if tokens[at:at + 1] != ["("]:
        return "decimal(10,0)", at
    precision, scale, at = tokens[at + 1], "0", at + 2
    if tokens[at:at + 1] == [","]:
        scale, at = tokens[at + 1], at + 2
    if not (precision.isdigit() and scale.isdigit() and 1 <= int(precision) <= 38 and int(scale) <= int(precision)):
        raise ValueError(f"type {text!r}: decimal precision must be 1-38 and scale at most the precision")
    _expect(tokens, at, ")", text)
    return f"decimal({int(precision)},{int(scale)})", at + 1


def _nested(word: str, tokens: list[str], at: int, text: str) -> tuple[str, int]:
    _expect(tokens, at, "<", text)
    parts, at = [], at + 1
    while tokens[at:at + 1] != [">"]:
        if parts:
            _expect(tokens, at, ",", text)
            at += 1
        if word == "struct":
            name, at = tokens[at].strip("`"), at + 1
            at += tokens[at:at + 1] == [":"]
            element, at = _type(tokens, at, text)
            parts.append(f"{name}:{element}")
        else:
            element, at = _type(tokens, at, text)
            parts.append(element)
        if at >= len(tokens):
            raise ValueError(f"type {text!r} has no closing '>'")
    if (word, len(parts)) in (("array", 1), ("map", 2)) or word == "struct":
        return f"{word}<{','.join(parts)}>", at + 1
    raise ValueError(f"type {text!r}: {word} takes {1 if word == 'array' else 2} type(s)")


def _expect(tokens: list[str], at: int, token: str, text: str) -> None:
    if tokens[at:at + 1] != [token]:
        raise ValueError(f"type {text!r}: expected {token!r}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """One declared column: its type as Spark prints it, and its metadata (comment, tags, mask)."""

    name: str = Field(min_length=1)
    type: str
    nullable: bool = True
    comment: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)  # Unity Catalog column tags (Databricks)
    mask: str | None = None  # a Unity Catalog function masking the column (Databricks)

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        """The type canonical and the mask a function name, each error naming its column."""
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            return value
        name, mask = value.get("name"), value.get("mask")
        try:
            if mask is not None and not (isinstance(mask, str) and _FUNCTION.match(mask)):
                raise ValueError(f"mask {mask!r} must name a function as schema.function or catalog.schema.function")
            return {**value, "type": canonical_type(value["type"])}
        except ValueError as exc:
            raise ValueError(f"column {name}: {exc}") from None


class RowFilter(_Model):
    """`row_filter: catalog.schema.function ON (col, ...)`: which rows a reader sees (Databricks)."""

    function: str
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "RowFilter":
        match = _ROW_FILTER.match(text)
        if not match:
            raise ValueError(f"row_filter {text!r} must read 'catalog.schema.function ON (column, ...)'")
        columns = tuple(c.strip().strip("`") for c in match.group(2).split(",") if c.strip())
        if not columns:
            raise ValueError(f"row_filter {text!r} must pass at least one column to its function")
        return cls(function=match.group(1), columns=columns)

    def __str__(self) -> str:
        return f"ROW FILTER {self.function} ON ({', '.join(sql_identifier(c) for c in self.columns)})"

    @model_serializer
    def _as_written(self) -> str:
        """Dumped as config.yml says it (`validate --show-config`), so it reads back the same."""
        return f"{self.function} ON ({', '.join(self.columns)})"


def contract_problems(columns: Sequence[ColumnSpec], mode: ContractMode,
                      actual: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """What breaks the contract in an output whose columns are `actual` (name -> `simpleString()` type),
    one line per column at fault, and the columns it does not declare (allowed when additive)."""
    if mode is ContractMode.OFF:
        return [], []
    problems = [f"column {c.name} is missing (declared {c.type})" for c in columns if c.name not in actual]
    problems += [f"column {c.name} is {actual[c.name]}, declared {c.type}"
                 for c in columns if c.name in actual and actual[c.name] != c.type]
    declared = {c.name for c in columns}
    extra = [name for name in actual if name not in declared]
    if mode is ContractMode.ENFORCED:
        problems += [f"column {name} ({actual[name]}) is not declared" for name in extra]
    return problems, extra


_JSON_NAMES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}


def spark_type(node: Any) -> str:
    """A type of a Delta log's `schemaString` (Spark's JSON form) as Spark prints it (`simpleString`)."""
    if isinstance(node, str):
        return _JSON_NAMES.get(node, node.replace(", ", ","))
    kind = node.get("type")
    if kind == "array":
        return f"array<{spark_type(node['elementType'])}>"
    if kind == "map":
        return f"map<{spark_type(node['keyType'])},{spark_type(node['valueType'])}>"
    if kind == "struct":
        return "struct<" + ",".join(f"{f['name']}:{spark_type(f['type'])}" for f in node["fields"]) + ">"
    raise ValueError(f"unknown type in a Delta schema: {node!r}")


def schema_ddl(columns: Sequence[ColumnSpec], *, masks: bool, extra: Sequence[tuple[str, str]] = ()) -> str:
    """The columns as a table schema in DDL (`dp.table(schema=...)`): types and comments, and with `masks`
    each column's MASK (Databricks only). NOT NULL is left to the data check: a pipeline refuses a
    non-nullable declared column over a query whose column Spark types nullable."""
    parts = []
    for column in columns:
        part = f"{sql_identifier(column.name)} {column.type}"
        if column.comment:
            part += " COMMENT " + sql_literal(column.comment)
        if masks and column.mask:
            part += f" MASK {column.mask}"
        parts.append(part)
    parts += [f"{sql_identifier(name)} {type_}" for name, type_ in extra]
    return ", ".join(parts)
