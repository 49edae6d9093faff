"""The monitors' dashboard: a Lakeview dashboard over every monitored table's profile and drift metric
tables, generated from the config by `ldp_engine monitors dashboard` (pure: no Spark, no workspace).

The metric tables live in the pipeline's Unity Catalog catalog, one pair per monitored table, while the
pipeline-health dashboard reads the inventory's database catalog; a bundle dashboard has one default
catalog and schema for all its datasets, so the monitors get their own dashboard, whose queries name
the metric tables unqualified (the bundle resource sets `dataset_catalog` and `dataset_schema`). Its
datasets are UNION ALLs with a `table_name` column, like the group views, but over every monitored
table: a project without groups gets the same view. Unsliced rows only (`slice_key IS NULL`).
"""
from __future__ import annotations

from typing import Any

from pipelines.core.config import Config
from pipelines.core.errors import Problem, UsageError
from pipelines.core.monitoring import TABLE_COLUMN as TABLE_ROW  # the whole table's row: its count is the rows
from pipelines.core.sql import sql_identifier, sql_literal

_PROFILE_FILTER = "slice_key IS NULL AND log_type = 'INPUT'"
_SELECTS = {  # dataset: (metric table kind, its columns, its filter)
    "table_volume": ("profile", ["`window`.`start` AS window_start", "`count` AS row_count"],
                     f"column_name = {sql_literal(TABLE_ROW)} AND {_PROFILE_FILTER}"),
    "column_profile": ("profile", ["`window`.`start` AS window_start", "column_name", "data_type",
                                   "percent_null", "distinct_count", "`avg`", "`min`", "`max`"],
                       f"column_name <> {sql_literal(TABLE_ROW)} AND {_PROFILE_FILTER}"),
    "drift": ("drift", ["`window`.`start` AS window_start", "column_name", "drift_type", "js_distance",
                        "population_stability_index", "ks_test.pvalue AS ks_pvalue",
                        "chi_squared_test.pvalue AS chi_squared_pvalue", "percent_null_delta", "count_delta"],
              f"column_name <> {sql_literal(TABLE_ROW)} AND slice_key IS NULL"),
}


def monitored_tables(config: Config) -> list[str]:
    return [table.name for table in config.tables if table.monitor is not None]


def metric_tables(config: Config) -> dict[str, str]:
    """{metric table: its kind} the dashboard reads: what a bundle check compares with the metric schemas."""
    return {f"{name}_{kind}_metrics": kind for name in monitored_tables(config) for kind in ("profile", "drift")}


def monitor_dashboard(config: Config) -> dict[str, Any]:
    """The Lakeview dashboard (`*.lvdash.json` content) over the config's monitored tables' metrics."""
    tables = monitored_tables(config)
    if not tables:
        raise UsageError(Problem("no table declares a monitor: there is nothing to chart", file=str(config.path),
                                 key="tables[].monitor"))
    return {"datasets": [_dataset(name, tables) for name in _SELECTS], "pages": [
        _page("volume", "Volume", [
            _line("rows_per_window", "table_volume", "window_start", "row_count", "table_name", "Rows per window", 0),
            _table("volume_rows", "table_volume", ["window_start", "table_name", "row_count"], "Rows", 3)]),
        _page("columns", "Columns", [
            _line("null_rate", "column_profile", "window_start", "percent_null", "table_column", "Null %", 0),
            _table("column_stats", "column_profile", ["window_start", "table_column", "data_type", "percent_null",
                                                      "distinct_count", "avg", "min", "max"], "Column profile", 3)]),
        _page("drift", "Drift", [
            _line("js_distance", "drift", "window_start", "js_distance", "table_column",
                  "Jensen-Shannon distance to the previous window (or the baseline)", 0),
            _table("drift_rows", "drift", ["window_start", "table_column", "drift_type", "js_distance",
                                           "population_stability_index", "ks_pvalue", "chi_squared_pvalue",
                                           "percent_null_delta", "count_delta"], "Drift", 3)]),
    ]}


def _dataset(name: str, tables: list[str]) -> dict[str, Any]:
    kind, columns, where = _SELECTS[name]
    per_table = "table_name, concat(table_name, '.', column_name) AS table_column" if "column_name" in columns \
        else "table_name"
    selects = [f"  SELECT {sql_literal(table)} AS table_name, {', '.join(columns)}\n"
               f"  FROM {sql_identifier(f'{table}_{kind}_metrics')}\n  WHERE {where}" for table in tables]
    body = "\n  UNION ALL\n".join(selects)
    outer = ", ".join(c.split(" AS ")[-1] for c in columns)
    lines = f"SELECT {per_table}, {outer}\nFROM (\n{body}\n) AS metrics\nORDER BY window_start, table_name"
    return {"name": name, "displayName": name.replace("_", " ").capitalize(),
            "queryLines": [line + "\n" for line in lines.split("\n")[:-1]] + [lines.split("\n")[-1]]}


def _page(name: str, title: str, widgets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "displayName": title, "pageType": "PAGE_TYPE_CANVAS", "layout": widgets}


def _query(dataset: str, fields: list[str]) -> list[dict[str, Any]]:
    return [{"name": "main_query", "query": {"datasetName": dataset, "disaggregated": True, "fields": [
        {"name": field, "expression": f"`{field}`"} for field in fields]}}]


def _line(name: str, dataset: str, x: str, y: str, color: str, title: str, column: int) -> dict[str, Any]:
    scales = {x: "temporal", y: "quantitative", color: "categorical"}
    return {"widget": {"name": name, "queries": _query(dataset, [x, y, color]), "spec": {
        "version": 3, "widgetType": "line",
        "encodings": {axis: {"fieldName": field, "scale": {"type": scales[field]}, "displayName": field}
                      for axis, field in (("x", x), ("y", y), ("color", color))},
        "frame": {"showTitle": True, "title": title}}},
        "position": {"x": column, "y": 0, "width": 3, "height": 6}}


def _table(name: str, dataset: str, fields: list[str], title: str, column: int) -> dict[str, Any]:
    return {"widget": {"name": name, "queries": _query(dataset, fields), "spec": {
        "version": 1, "widgetType": "table",
        "encodings": {"columns": [{"fieldName": field, "displayName": field} for field in fields]},
        "frame": {"showTitle": True, "title": title}}},
        "position": {"x": column, "y": 0, "width": 3, "height": 6}}
