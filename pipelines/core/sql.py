"""SQL text the engine generates: string literals and identifiers quoted once, the same way everywhere."""
from __future__ import annotations


def sql_identifier(name: str) -> str:
    """`name` as a quoted Spark SQL identifier (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def sql_literal(value: object) -> str:
    """`value` as a quoted Spark SQL string literal (backslashes and quotes escaped)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
