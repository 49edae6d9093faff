"""Drift between two profiles, in Databricks' `{table}_drift_metrics` row shape, computed from the
stored profile rows alone: no scan of any table.

Which metric applies where (documented in the README, tested against scipy on the raw values):
- every column: `count_delta`, `avg_delta`, `percent_null_delta`, `percent_zeros_delta`,
  `percent_distinct_delta`; the `:table` row: `count_delta` and `non_null_columns_delta`.
- numeric columns, from the 101 stored percentiles (the quantile function, linear between them):
  `ks_test` (largest gap between the two CDFs; p-value from the Kolmogorov distribution with the two
  non-null counts), `wasserstein_distance` (the area between the quantile functions),
  `population_stability_index` (ten bins at the comparison's deciles).
- string and boolean columns, from the stored frequent items plus one "other" bucket for the rest of
  the non-null rows: `js_distance` (Jensen-Shannon distance, base 2, in [0, 1]), `tv_distance`,
  `l_infinity_distance`, `chi_squared_test` (contingency test of the two count vectors).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from pipelines.core.monitoring import TABLE_COLUMN

Row = dict[str, Any]
CONSECUTIVE, BASELINE = "CONSECUTIVE", "BASELINE"
_OTHER = "\u0000other"  # the bucket of the non-null values outside the frequent items
_PSI_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


def series_key(row: Row) -> tuple[Any, ...]:
    """Rows that follow each other in time: same granularity, slice and column."""
    return row["granularity"], row["slice_key"], row["slice_value"], row["column_name"]


def consecutive(new: Iterable[Row], history: Iterable[Row]) -> list[Row]:
    """Each new row against the latest earlier window of its series (new rows included: a time
    series profiles many windows at once)."""
    by_series: dict[tuple[Any, ...], list[Row]] = {}
    for row in [*history, *new]:
        by_series.setdefault(series_key(row), []).append(row)
    drift = []
    for row in new:
        earlier = [r for r in by_series[series_key(row)] if r["window"]["start"] < row["window"]["start"]]
        if earlier:
            drift.append(drift_row(row, max(earlier, key=lambda r: r["window"]["start"]), CONSECUTIVE))
    return drift


def against_baseline(new: Iterable[Row], baseline: Iterable[Row]) -> list[Row]:
    """Each new row against the baseline's row of the same slice and column."""
    by_column = {(r["slice_key"], r["slice_value"], r["column_name"]): r for r in baseline}
    return [drift_row(row, by_column[key], BASELINE) for row in new
            if (key := (row["slice_key"], row["slice_value"], row["column_name"])) in by_column]


def drift_row(current: Row, compared: Row, drift_type: str) -> Row:
    row: Row = {key: current[key] for key in ("window", "granularity", "monitor_version", "slice_key", "slice_value",
                                               "column_name", "data_type")}
    row.update(window_cmp=compared["window"], drift_type=drift_type,
               count_delta=_delta(current, compared, "count"), avg_delta=_delta(current, compared, "avg"),
               percent_null_delta=_delta(current, compared, "percent_null"),
               percent_zeros_delta=_delta(current, compared, "percent_zeros"),
               percent_distinct_delta=_delta(current, compared, "percent_distinct"))
    if current["column_name"] == TABLE_COLUMN:
        now, before = set(current["non_null_columns"] or ()), set(compared["non_null_columns"] or ())
        row["non_null_columns_delta"] = {"added": len(now - before), "missing": len(before - now)}
    if current.get("quantiles") and compared.get("quantiles"):
        row.update(_numeric(current, compared))
    elif current.get("frequent_items") is not None and compared.get("frequent_items") is not None:
        row.update(_categorical(current, compared))
    return row


def _delta(current: Row, compared: Row, metric: str) -> Any:
    now, before = current.get(metric), compared.get(metric)
    return None if now is None or before is None else now - before


def _non_null(row: Row) -> int:
    return int(row["count"] or 0) - int(row.get("num_nulls") or 0) - int(row.get("num_nan") or 0)


def _numeric(current: Row, compared: Row) -> Row:
    levels = np.linspace(0.0, 1.0, len(current["quantiles"]))
    mine, theirs = np.asarray(current["quantiles"], float), np.asarray(compared["quantiles"], float)
    if len(theirs) != len(levels):  # profiled with another grid: compare on this one
        theirs = np.interp(levels, np.linspace(0.0, 1.0, len(theirs)), theirs)
    n, m = _non_null(current), _non_null(compared)
    points = np.union1d(mine, theirs)
    statistic = float(np.max(np.abs(_cdf(points, mine, levels) - _cdf(points, theirs, levels)))) if len(points) else 0.0
    pvalue = float(stats.kstwobign.sf(statistic * math.sqrt(n * m / (n + m)))) if n and m else None
    return {"ks_test": {"statistic": statistic, "pvalue": pvalue},
            "wasserstein_distance": _area(np.abs(mine - theirs), levels),
            "population_stability_index": _psi(mine, theirs, levels)}


def _cdf(points: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The CDF at `points` of a distribution known by its quantiles, linear between them and
    right-continuous where a value repeats (a discrete column's percentiles tie)."""
    above = np.searchsorted(quantiles, points, side="right")  # quantiles[above - 1] <= point < quantiles[above]
    inside = (above > 0) & (above < len(quantiles))
    lo, hi = np.clip(above - 1, 0, len(quantiles) - 1), np.clip(above, 0, len(quantiles) - 1)
    span = np.where(inside, quantiles[hi] - quantiles[lo], 1.0)
    between = levels[lo] + (points - quantiles[lo]) / span * (levels[hi] - levels[lo])
    return np.where(above == 0, 0.0, np.where(above >= len(quantiles), 1.0, between))


def _area(heights: np.ndarray, levels: np.ndarray) -> float:
    """Trapezoid rule (numpy 1.x names it trapz, 2.x trapezoid)."""
    return float(np.sum((heights[1:] + heights[:-1]) / 2 * np.diff(levels)))


def _psi(mine: np.ndarray, theirs: np.ndarray, levels: np.ndarray) -> float:
    edges = np.unique(np.interp(np.linspace(0.1, 0.9, 9), levels, theirs))
    expected = np.diff(np.concatenate([[0.0], _cdf(edges, theirs, levels), [1.0]]))
    actual = np.diff(np.concatenate([[0.0], _cdf(edges, mine, levels), [1.0]]))
    expected, actual = np.maximum(expected, _PSI_FLOOR), np.maximum(actual, _PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _categorical(current: Row, compared: Row) -> Row:
    mine, theirs = _counts(current), _counts(compared)
    items = sorted(set(mine) | set(theirs))
    a = np.array([mine.get(i, 0) for i in items], float)
    b = np.array([theirs.get(i, 0) for i in items], float)
    if not a.sum() or not b.sum():
        return {}
    p, q = a / a.sum(), b / b.sum()
    table = np.array([a, b])[:, (a + b) > 0]
    chi2 = (stats.chi2_contingency(table, correction=False) if table.shape[1] > 1 else None)
    return {"js_distance": float(jensenshannon(p, q, base=2)), "tv_distance": float(0.5 * np.abs(p - q).sum()),
            "l_infinity_distance": float(np.abs(p - q).max()),
            "chi_squared_test": {"statistic": float(chi2.statistic), "pvalue": float(chi2.pvalue)} if chi2 else
            {"statistic": 0.0, "pvalue": 1.0}}


def _counts(row: Row) -> dict[str, int]:
    counts = {item["item"]: int(item["count"]) for item in row["frequent_items"]}
    rest = _non_null(row) - sum(counts.values())
    if rest > 0:
        counts[_OTHER] = rest
    return counts
