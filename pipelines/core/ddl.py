"""Spark DDL field lists (`a INT, b STRUCT<x: INT, y: STRING>`) read without Spark, for the checks that
run before it starts."""
from __future__ import annotations

__all__ = ["ddl_fields", "ddl_columns"]


def ddl_fields(ddl: str) -> list[tuple[str, str]]:
    """Each top-level field as (name, the rest of its text): split at commas outside brackets and
    quotes, each field's first word unquoted (`b c` in backticks is one name)."""
    fields, depth, quote, current = [], 0, "", ""
    for char in ddl:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            fields.append(current)
            current = ""
            continue
        current += char
    fields.append(current)
    named = []
    for field in (f.strip() for f in fields if f.strip()):
        if field.startswith("`"):
            end = field.index("`", 1)
            named.append((field[1:end].replace("``", "`"), field[end + 1:].strip()))
        else:
            name, _, rest = field.partition(" ")
            named.append((name.rstrip(":"), rest.strip()))
    return named


def ddl_columns(ddl: str) -> list[str]:
    """The top-level column names of a Spark DDL schema."""
    return [name for name, _ in ddl_fields(ddl)]
