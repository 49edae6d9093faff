"""A small digest of a table's newest profile and drift, per column, for the run summary and the run
report: what a reader scans first (nulls, distinct values, range, quantiles, drift), without the metric
tables. The newest window of the first granularity, unsliced; pure Python over the computed rows."""
from __future__ import annotations

from typing import Any

from .alerts import newest_windows

Row = dict[str, Any]
DRIFT_METRICS = ("js_distance", "ks_test", "wasserstein_distance", "population_stability_index",
                 "chi_squared_test", "tv_distance", "l_infinity_distance")


def digest(profile: list[Row], drift: list[Row]) -> dict[str, Any]:
    """`{"columns": [...], "drift": [...]}` for the newest unsliced window of one granularity."""
    rows = [r for r in profile if r["slice_key"] is None and r["log_type"] == "INPUT" and r["column_name"] != ":table"]
    newest = newest_windows(rows)
    if not newest:
        return {"columns": [], "drift": []}
    granularity = sorted(newest, key=str)[0]
    latest = [r for r in rows if r["granularity"] == granularity and r["window"]["start"] == newest[granularity]]
    columns = [{"column": r["column_name"], "type": r["data_type"], "count": r["count"],
                "percent_null": r["percent_null"], "percent_distinct": r["percent_distinct"],
                "min": _number(r["min"]), "max": _number(r["max"]), "avg": _number(r["avg"]),
                "quantiles": _quartiles(r["quantiles"])} for r in latest]
    changes = [{"column": r["column_name"], "drift_type": r["drift_type"],
                **{m: _statistic(r.get(m)) for m in DRIFT_METRICS if _statistic(r.get(m)) is not None}}
               for r in drift if r["slice_key"] is None and r["granularity"] == granularity
               and r["window"]["start"] == newest[granularity] and r["column_name"] != ":table"]
    return {"window": str(newest[granularity]), "columns": columns, "drift": changes}


def _quartiles(quantiles: list[float] | None) -> list[float] | None:
    """0, 25, 50, 75 and 100th percentiles out of the 101 stored."""
    if not quantiles or len(quantiles) < 101:
        return None
    return [quantiles[i] for i in (0, 25, 50, 75, 100)]


def _number(value: Any) -> Any:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return str(value)  # min / max of strings and dates, as text


def _statistic(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("statistic")
    return None if value is None else float(value)
