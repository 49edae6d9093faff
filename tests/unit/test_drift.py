"""Drift metrics from stored profile rows, against scipy on the raw values the profiles summarize."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from pipelines.monitors.drift import BASELINE, CONSECUTIVE, against_baseline, consecutive, drift_row

LEVELS = np.linspace(0, 1, 101)


def numeric_row(values: np.ndarray, day: int, nulls: int = 0, column: str = "x") -> dict:
    """A profile row as `profile()` stores it (exact quantiles stand in for the sketch)."""
    start = datetime(2026, 11, day)
    return {"window": {"start": start, "end": start + timedelta(days=1)}, "granularity": "1 day",
            "monitor_version": 0, "slice_key": None, "slice_value": None, "column_name": column,
            "data_type": "double", "count": len(values) + nulls, "num_nulls": nulls, "num_nan": 0,
            "avg": float(values.mean()), "percent_null": 100 * nulls / (len(values) + nulls),
            "percent_zeros": 0.0, "percent_distinct": 100.0, "quantiles": list(np.quantile(values, LEVELS)),
            "frequent_items": None}


def categorical_row(counts: dict[str, int], day: int, top_k: int = 20) -> dict:
    start = datetime(2026, 11, day)
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:top_k]
    return {"window": {"start": start, "end": start + timedelta(days=1)}, "granularity": "1 day",
            "monitor_version": 0, "slice_key": None, "slice_value": None, "column_name": "c", "data_type": "string",
            "count": sum(counts.values()), "num_nulls": 0, "num_nan": None, "avg": None, "percent_null": 0.0,
            "percent_zeros": None, "percent_distinct": None, "quantiles": None,
            "frequent_items": [{"item": k, "count": v} for k, v in items]}


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.3, 1.0), (0.0, 1.5), (2.0, 0.5)])
def test_numeric_drift_matches_scipy_on_the_raw_values(shift, scale):
    rng = np.random.default_rng(7)
    before, after = rng.normal(0, 1, 20_000), rng.normal(shift, scale, 15_000)
    row = drift_row(numeric_row(after, 2), numeric_row(before, 1), CONSECUTIVE)
    ks = stats.ks_2samp(after, before, method="asymp")
    assert row["ks_test"]["statistic"] == pytest.approx(ks.statistic, abs=0.012)  # the percentile grid
    assert row["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(after, before), rel=0.05, abs=0.01)
    deciles = np.quantile(before, np.linspace(0.1, 0.9, 9))
    expected = np.maximum(np.histogram(before, [-np.inf, *deciles, np.inf])[0] / len(before), 1e-4)
    actual = np.maximum(np.histogram(after, [-np.inf, *deciles, np.inf])[0] / len(after), 1e-4)
    psi = float(np.sum((actual - expected) * np.log(actual / expected)))
    # shares under 1% sit between two stored percentiles: extreme drift (PSI far past 0.2) is approximate
    assert row["population_stability_index"] == pytest.approx(psi, rel=0.05 if psi < 1 else 0.15, abs=0.005)
    if ks.statistic > 0.05:  # a real shift: both agree it is significant
        assert row["ks_test"]["pvalue"] < 1e-6 and ks.pvalue < 1e-6
    else:
        assert row["ks_test"]["pvalue"] > 0.001
    assert row["count_delta"] == -5_000 and row["avg_delta"] == pytest.approx(after.mean() - before.mean())


def test_a_discrete_column_ties_without_inventing_drift():
    values = np.array([1.0] * 500 + [2.0] * 300 + [3.0] * 200)
    row = drift_row(numeric_row(values, 2), numeric_row(values.copy(), 1), CONSECUTIVE)
    assert row["ks_test"]["statistic"] == 0.0 and row["wasserstein_distance"] == 0.0
    assert row["population_stability_index"] == pytest.approx(0.0, abs=1e-12)


def test_categorical_drift_matches_scipy_when_every_item_is_stored():
    before, after = {"PT": 500, "ES": 300, "FR": 200}, {"PT": 300, "ES": 300, "FR": 350, "DE": 50}
    row = drift_row(categorical_row(after, 2), categorical_row(before, 1), CONSECUTIVE)
    items = ["DE", "ES", "FR", "PT"]
    a = np.array([after.get(i, 0) for i in items], float)
    b = np.array([before.get(i, 0) for i in items], float)
    p, q = a / a.sum(), b / b.sum()
    assert row["js_distance"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert row["tv_distance"] == pytest.approx(0.5 * abs(p - q).sum())
    assert row["l_infinity_distance"] == pytest.approx(abs(p - q).max())
    chi2 = stats.chi2_contingency(np.array([a, b]), correction=False)
    assert row["chi_squared_test"] == pytest.approx({"statistic": chi2.statistic, "pvalue": chi2.pvalue})
    assert "ks_test" not in row


def test_items_beyond_the_stored_top_k_count_as_one_other_bucket():
    counts = {f"v{i}": 100 - i for i in range(30)}
    row = drift_row(categorical_row(counts, 2, top_k=5), categorical_row(counts, 1, top_k=5), CONSECUTIVE)
    assert row["js_distance"] == 0.0 and row["chi_squared_test"]["pvalue"] == pytest.approx(1.0)


def test_consecutive_pairs_each_window_with_the_latest_earlier_one_of_its_series():
    rng = np.random.default_rng(1)
    stored = [numeric_row(rng.normal(size=100), 1), numeric_row(rng.normal(size=100), 3)]
    new = [numeric_row(rng.normal(size=100), 5), numeric_row(rng.normal(size=100), 4),
           numeric_row(rng.normal(size=100), 5, column="y")]
    pairs = {(r["window"]["start"].day, r["window_cmp"]["start"].day) for r in consecutive(new, stored)}
    assert pairs == {(5, 4), (4, 3)}  # y has no earlier window: no drift row


def test_baseline_pairs_by_slice_and_column_and_table_rows_count_columns():
    table_now = {**numeric_row(np.ones(3), 2, column=":table"), "quantiles": None, "non_null_columns": ["a", "b"]}
    table_base = {**numeric_row(np.ones(5), 1, column=":table"), "quantiles": None, "non_null_columns": ["a", "c"],
                  "granularity": None}
    [row] = against_baseline([table_now], [table_base])
    assert row["drift_type"] == BASELINE and row["count_delta"] == -2
    assert row["non_null_columns_delta"] == {"added": 1, "missing": 1}
