"""Offline checks of a Lakeview dashboard file (`*.lvdash.json`): every dataset's query parses as
Databricks SQL and names only tables and columns that exist, and every widget reads a dataset that
exists and only the columns it returns. Each returns a list of problems, naming the dataset or widget."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

Tables = Mapping[str, Sequence[str]]  # {table: its columns}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def query(dataset: dict[str, Any]) -> str:
    return "".join(dataset["queryLines"])


def dataset_columns(document: dict[str, Any], tables: Tables) -> tuple[dict[str, list[str] | None], list[str]]:
    """{dataset: the columns its query returns, None if it does not hold}, and its problems."""
    schema = {table: {column: "STRING" for column in columns} for table, columns in tables.items()}
    columns: dict[str, list[str] | None] = {}
    problems = []
    for dataset in document.get("datasets", []):
        name = dataset.get("name", "?")
        columns[name] = None
        try:
            parsed = sqlglot.parse_one(query(dataset), read="databricks")
            unknown = sorted({t.name for t in parsed.find_all(exp.Table)} - set(tables))
            if unknown:
                problems.append(f"dataset {name}: table(s) {', '.join(unknown)} not declared")
                continue
            columns[name] = qualify(parsed, schema=schema, dialect="databricks").named_selects
        except (SqlglotError, KeyError) as error:
            problems.append(f"dataset {name}: {str(error).splitlines()[0]}")
    return columns, problems


def widget_problems(document: dict[str, Any], columns: dict[str, list[str] | None]) -> list[str]:
    """Each widget query's dataset exists, its fields read only that dataset's columns, and the
    widget's encodings name only its fields (a widget over a broken dataset: that dataset's problem)."""
    problems = []
    for page in document.get("pages", []):
        for item in page.get("layout", []):
            widget = item["widget"]
            fields: set[str] = set()
            sources = [spec["query"]["datasetName"] for spec in widget.get("queries", [])]
            missing_sources = [source for source in sources if source not in columns]
            problems += [f"widget {widget['name']}: dataset {source!r} does not exist" for source in missing_sources]
            if missing_sources or any(columns[source] is None for source in sources):
                continue
            for spec in widget.get("queries", []):
                source = spec["query"]["datasetName"]
                for field in spec["query"]["fields"]:
                    fields.add(field["name"])
                    named = {c.name for c in sqlglot.parse_one(field["expression"], read="databricks")
                             .find_all(exp.Column)}
                    missing = sorted(named - set(columns[source] or ()))
                    if missing:
                        problems.append(f"widget {widget['name']}: field {field['name']!r} reads "
                                        f"{', '.join(missing)}, not returned by dataset {source}")
            problems += [f"widget {widget['name']}: encoding names {name!r}, not one of its fields"
                         for name in encoded(widget.get("spec", {}).get("encodings", {})) if name not in fields]
    return problems


def encoded(encodings: Any) -> list[str]:
    """Every `fieldName` in a widget's encodings (nested: a table's column list, a chart's axes)."""
    if isinstance(encodings, dict):
        return ([encodings["fieldName"]] if "fieldName" in encodings else []) + [
            name for value in encodings.values() for name in encoded(value)]
    if isinstance(encodings, list):
        return [name for value in encodings for name in encoded(value)]
    return []


def problems(document: dict[str, Any], tables: Tables) -> list[str]:
    columns, found = dataset_columns(document, tables)
    return found + widget_problems(document, columns)
