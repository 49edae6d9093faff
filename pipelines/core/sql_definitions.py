"""Tables defined in SQL: `{transformations}/{layer}/{name}.sql` holds one SELECT that names its
upstream tables as config.yml does (`FROM orders_bronze`), and `source` for the table's own source.

It becomes a transformation like any other: the engine passes the inputs, and the query runs as
`spark.sql(query, orders_bronze=<DataFrame>, ...)`, each input name replaced by a `{placeholder}`.
So every runner feeds it exactly what it feeds a Python function (upstream tables without DQX's
columns; inside a pipeline's query function, `spark.read.table` reads, so the runtime sees each
dependency), and checks, monitors and sinks treat it like any table.

Parsed with sqlglot (Spark dialect) before Spark starts: a parse error names its line and column; a
name that is neither an input nor qualified (`schema.table`) is located, with the fix; a declared
input the query never reads is reported, as an unused parameter of a Python function is.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Problem

SOURCE = "source"


@dataclass(frozen=True)
class SqlTransformation:
    """A SELECT as a transformation: `spark.sql(template, **inputs)`."""

    file: Path
    template: str  # the query with each input name as {name}, other braces doubled

    def __call__(self, spark: Any, **inputs: Any) -> Any:
        return spark.sql(self.template, **inputs)


class SqlProblem(Exception):
    """Everything wrong with one SQL file (the loader adds them to the project's problems)."""

    def __init__(self, problems: tuple[Problem, ...]):
        super().__init__("; ".join(p.render() for p in problems))
        self.problems = problems


def load_sql(file: Path, table: str, inputs: tuple[str, ...], tables: frozenset[str]) -> SqlTransformation:
    """Parse `file`; raise SqlProblem with every problem found. `inputs` are the names the query may
    read unqualified (depends_on, plus `source`); `tables` are all the config's tables."""
    import sqlglot
    from sqlglot import exp

    text = file.read_text(encoding="utf-8")
    where = str(file)
    try:
        statements = [s for s in sqlglot.parse(text, read="spark") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SqlProblem((Problem(f"cannot parse the SQL: {first.get('description') or exc}", file=where,
                                  table=table, line=first.get("line"), column=first.get("col")),)) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlProblem((Problem(f"the file must hold exactly one SELECT (found {len(statements)} statement(s)"
                                  + ("" if not statements else f", the first a {statements[0].key.upper()}") + ")",
                                  file=where, table=table, key="transformation"),))
    query = statements[0]
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    spans: list[tuple[int, int, str]] = []
    problems: list[Problem] = []
    read: set[str] = set()
    for ref in query.find_all(exp.Table):
        if ref.db or ref.catalog or ref.name in ctes or not ref.name:
            continue  # qualified: an existing table of the runtime's catalog; or a CTE of the query
        meta = ref.this.meta if isinstance(ref.this, exp.Identifier) else {}
        if ref.name in inputs:
            read.add(ref.name)
            spans.append((meta["start"], meta["end"] + 1, ref.name))
            continue
        hint = (f"add '{ref.name}' to the table's depends_on" if ref.name in tables
                else "upstream tables are named as in config.yml; other tables need schema.table")
        problems.append(Problem(f"the query reads '{ref.name}', which is not one of its inputs "
                                f"({', '.join(inputs) or 'none'})", file=where, table=table, key="depends_on",
                                line=meta.get("line"), column=_start_column(meta), hint=hint))
    problems += [Problem(f"the query in {file.name} never reads its input '{name}'", table=table,
                         key="source" if name == SOURCE else "depends_on",  # located in config.yml
                         hint=f"read it (FROM {name}) or remove it") for name in inputs if name not in read]
    if problems:
        raise SqlProblem(tuple(problems))
    return SqlTransformation(file, _template(text, sorted(spans)))


def _start_column(meta: dict[str, Any]) -> int | None:
    """sqlglot's `col` is the token's last column; the user looks for its first."""
    if "col" not in meta:
        return None
    return meta["col"] - (meta["end"] - meta["start"])


def _template(text: str, spans: list[tuple[int, int, str]]) -> str:
    """The query with each input reference as `{name}` and every other brace doubled (str.format)."""
    out, position = [], 0
    for start, end, name in spans:
        out.append(text[position:start].replace("{", "{{").replace("}", "}}"))
        out.append("{" + name + "}")
        position = end
    out.append(text[position:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)
