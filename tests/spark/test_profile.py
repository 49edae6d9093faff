"""The local snapshot profile against values computed independently with numpy / pandas on the same
rows: exact counts and moments; quantiles within percentile_approx's rank error; frequent items; and a
fixed number of Spark jobs whatever the number of columns."""
from __future__ import annotations

import random
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from pipelines.monitors.profile import PROFILE_SCHEMA, TABLE_ROW, Grouping, ProfileOptions, profile, profile_rows

WINDOW = (datetime(2026, 11, 23), datetime(2026, 11, 24))


def fixture_rows(n: int = 2_000, seed: int = 3) -> pd.DataFrame:
    rng = random.Random(seed)
    return pd.DataFrame({
        "qty": [None if i % 17 == 0 else rng.randint(-3, 50) for i in range(n)],
        "amount": [None if i % 11 == 0 else (0.0 if i % 13 == 0 else rng.gauss(100, 25)) for i in range(n)],
        "country": [None if i % 9 == 0 else rng.choice(["PT", "ES", "FR", "DE", "PT", "PT"]) for i in range(n)],
        "vip": [rng.random() < 0.2 for _ in range(n)],
    })


@pytest.fixture(scope="module")
def profiled(spark):
    rows = fixture_rows()
    df = spark.createDataFrame(rows.astype(object).where(rows.notna(), None),
                               "qty int, amount double, country string, vip boolean")
    result = profile(spark, df, WINDOW)
    return rows, {r["column_name"]: r.asDict(recursive=True) for r in result.collect()}, result


def test_the_profile_has_databricks_schema_and_one_row_per_column_plus_the_table(profiled):
    rows, by_column, result = profiled
    assert result.schema == PROFILE_SCHEMA
    assert set(by_column) == {"qty", "amount", "country", "vip", TABLE_ROW}
    table = by_column[TABLE_ROW]
    assert table["count"] == len(rows) and table["non_null_columns"] == ["qty", "amount", "country", "vip"]
    assert all(r["log_type"] == "INPUT" and r["window"]["start"] == WINDOW[0] for r in by_column.values())


@pytest.mark.parametrize("column", ["qty", "amount"])
def test_numeric_metrics_equal_numpy(profiled, column):
    rows, by_column, _ = profiled
    values = rows[column].dropna().astype(float).to_numpy()
    got = by_column[column]
    assert got["count"] == len(rows)
    assert got["num_nulls"] == rows[column].isna().sum()
    assert got["percent_null"] == pytest.approx(100 * rows[column].isna().mean())
    assert got["num_zeros"] == int((values == 0).sum())
    assert got["min"] == values.min() and got["max"] == values.max()
    assert got["avg"] == pytest.approx(values.mean(), rel=1e-12)
    assert got["stddev"] == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert got["distinct_count"] == pytest.approx(len(np.unique(values)), rel=0.05)
    assert len(got["quantiles"]) == len(ProfileOptions().quantiles) == 101
    for p, q in zip(ProfileOptions().quantiles, got["quantiles"]):  # the KLL sketch's rank bound
        below, at_most = (values < q).mean(), (values <= q).mean()
        assert below - 0.0015 <= p <= at_most + 0.0015, (p, q)
    assert got["median"] == got["quantiles"][50]


def test_string_and_boolean_metrics_equal_pandas(profiled):
    rows, by_column, _ = profiled
    country = by_column["country"]
    present = rows["country"].dropna()
    assert country["num_nulls"] == rows["country"].isna().sum()
    assert (country["min_length"], country["max_length"], country["avg_length"]) == (2.0, 2.0, 2.0)
    counts = present.value_counts()
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(i["item"], i["count"]) for i in country["frequent_items"]] == expected
    assert country["distinct_count"] == 4 and country["min"] is None
    vip = by_column["vip"]
    assert {i["item"]: i["count"] for i in vip["frequent_items"]} == {
        "true": int(rows["vip"].sum()), "false": int((~rows["vip"]).sum())}


def test_nan_is_counted_apart_from_nulls(spark):
    df = spark.createDataFrame([(1.0,), (float("nan"),), (None,), (0.0,)], "x double")
    [x] = [r for r in profile(spark, df, WINDOW).collect() if r["column_name"] == "x"]
    assert (x["num_nan"], x["num_nulls"], x["num_zeros"], x["percent_nan"]) == (1, 1, 1, 25.0)


def scans_of(spark, columns: int, rows: int = 20_000, grouping: Grouping = Grouping()) -> tuple[int, int]:
    """(input scans, Spark jobs) of profiling a table of `columns` columns. Every column derives from
    one Python UDF that counts its calls in an accumulator, so calls / rows = times the input was
    scanned; the status tracker counts jobs (both SparkContext APIs: test-only, classic session)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    context = spark.sparkContext
    calls = context.accumulator(0)

    def tick(value):
        calls.add(1)
        return value

    ticked = spark.range(rows).withColumn("t", F.udf(tick, LongType())("id"))
    numeric = [f"(t * {i}) % 97 AS n{i}" for i in range(columns - columns // 5)]
    strings = [f"CAST(t % {i + 3} AS STRING) AS s{i}" for i in range(columns // 5)]
    df = ticked.selectExpr(*numeric, *strings, "TIMESTAMP'2026-11-01' + make_interval(0, 0, 0, 0, id % 100) AS ts")
    group = f"profile-{random.random()}"
    context.setJobGroup(group, "profile")
    try:
        profile(spark, df, WINDOW, ProfileOptions(top_k=5), grouping).collect()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    return calls.value // rows, len(context.statusTracker().getJobIdsForGroup(group))


def test_profiling_scans_the_input_twice_whatever_the_number_of_columns(spark):
    narrow, broad = scans_of(spark, 5), scans_of(spark, 100)
    assert narrow[0] == broad[0] == 2, (narrow, broad)  # one fused aggregation, one melt + group-by
    assert narrow[1] == broad[1], (narrow, broad)  # and no job per column (the rest read shuffles)


def test_time_series_windows_and_slices_equal_pandas_groupby(spark):
    """One row per (granularity, window, slice, column): daily and weekly (Monday) windows, unsliced and
    sliced by an expression, each equal to pandas grouping the same rows."""
    rng = random.Random(5)
    rows = pd.DataFrame({
        "ts": [datetime(2026, 11, 1 + rng.randint(0, 20), rng.randint(0, 23)) for _ in range(600)],
        "amount": [rng.choice([None, 0.0, rng.uniform(1, 9)]) for _ in range(600)],
        "country": [rng.choice(["PT", "ES", None]) for _ in range(600)],
    })
    df = spark.createDataFrame(rows.astype(object).where(rows.notna(), None), "ts timestamp, amount double, country string")
    grouping = Grouping("ts", ("1 day", "1 week"), ("country",))
    got = [r.asDict(recursive=True) for r in profile(spark, df, WINDOW, grouping=grouping).collect()]
    index = {(r["granularity"], r["window"]["start"], r["slice_key"], r["slice_value"], r["column_name"]): r
             for r in got}
    assert len(index) == len(got)  # one row per key
    rows["day"] = rows["ts"].dt.floor("D")
    rows["week"] = rows["ts"].dt.to_period("W-SUN").dt.start_time  # weeks starting on Monday
    for granularity, period in (("1 day", "day"), ("1 week", "week")):
        for start, part in rows.groupby(period):
            table = index[(granularity, start.to_pydatetime(), None, None, TABLE_ROW)]
            assert table["count"] == len(part)
            amount = index[(granularity, start.to_pydatetime(), None, None, "amount")]
            assert amount["num_nulls"] == part["amount"].isna().sum()
            assert amount["num_zeros"] == (part["amount"] == 0).sum()
            assert amount["avg"] == pytest.approx(part["amount"].mean())
            for country, sliced in part.dropna(subset=["country"]).groupby("country"):
                row = index[(granularity, start.to_pydatetime(), "country", country, "amount")]
                assert row["count"] == len(sliced) and row["num_nulls"] == sliced["amount"].isna().sum()
                items = index[(granularity, start.to_pydatetime(), "country", country, "country")]["frequent_items"]
                assert items == [{"item": country, "count": len(sliced)}]
    assert {r["granularity"] for r in got} == {"1 day", "1 week"}
    weeks = {r["window"]["start"] for r in got if r["granularity"] == "1 week"}
    assert all(start.weekday() == 0 for start in weeks)


def test_windows_and_slices_add_no_scan(spark):
    plain = scans_of(spark, 10)
    grouped = scans_of(spark, 10, grouping=Grouping("ts", ("1 day", "1 month"), ("s0", "n1 > 50")))
    assert plain[0] == grouped[0] == 2, (plain, grouped)


@pytest.mark.parametrize("sketch, bound", [("kll", 0.0015), ("percentile_approx", 1e-4)])
def test_quantiles_stay_within_each_sketchs_documented_rank_error(spark, sketch, bound):
    values = np.random.default_rng(11).normal(50, 10, 300_000)
    df = spark.createDataFrame(pd.DataFrame({"x": values})).repartition(4)
    [x] = [r for r in profile(spark, df, WINDOW, ProfileOptions(quantile_sketch=sketch)).collect()
           if r["column_name"] == "x"]
    ordered = np.sort(values)
    errors = [max(p - np.searchsorted(ordered, q, side="right") / len(values),
                  np.searchsorted(ordered, q, side="left") / len(values) - p, 0.0)
              for p, q in zip(ProfileOptions().quantiles, x["quantiles"])]
    assert max(errors) <= bound, max(errors)
    assert x["median"] == x["quantiles"][50]


def test_an_all_null_or_all_nan_column_has_no_quantiles(spark):
    df = spark.createDataFrame([(None, float("nan")), (None, float("nan"))], "a double, b double")
    rows = {r["column_name"]: r for r in profile(spark, df, WINDOW).collect()}
    assert rows["a"]["quantiles"] is None and rows["b"]["quantiles"] is None and rows["b"]["num_nan"] == 2


def test_model_quality_of_an_inference_profile_equals_scikit_learn_per_window_and_model(spark):
    from sklearn import metrics

    from pipelines.monitors.model_quality import ModelQuality

    rng = np.random.default_rng(3)
    n = 3_000
    rows = pd.DataFrame({"ts": [datetime(2026, 11, 1 + int(d)) for d in rng.integers(0, 3, n)],
                         "model": rng.choice(["m1", "m2"], n),
                         "label": rng.choice(["cat", "dog", "eel"], n, p=[0.5, 0.3, 0.2]),
                         "y": rng.normal(10, 3, n)})
    rows["guess"] = np.where(rng.random(n) < 0.7, rows["label"], rng.choice(["cat", "dog", "eel", "fox"], n))
    rows["y_hat"] = rows["y"] + rng.normal(0, 1, n)
    rows.loc[::50, "label"] = None  # unlabelled rows take no part
    df = spark.createDataFrame(rows.astype(object).where(rows.notna(), None),
                               "ts timestamp, model string, label string, y double, guess string, y_hat double")
    grouping = Grouping("ts", ("1 day",), ("model",))
    classified = profile_rows(df, WINDOW, grouping=grouping, model=ModelQuality("classification", "guess", "label"))
    regressed = profile_rows(df, WINDOW, grouping=grouping, model=ModelQuality("regression", "y_hat", "y"))
    for (day, model), part in rows.groupby([rows["ts"], rows["model"]]):
        key = lambda r: (r["column_name"], r["window"]["start"], r["slice_value"]) == (TABLE_ROW, day, model)  # noqa: E731
        [got] = [r for r in classified if key(r)]
        labelled = part.dropna(subset=["label"])
        truth, guess = labelled["label"], labelled["guess"]
        assert got["accuracy_score"] == pytest.approx(metrics.accuracy_score(truth, guess))
        for name, function in (("precision", metrics.precision_score), ("recall", metrics.recall_score),
                               ("f1_score", metrics.f1_score)):
            for average in ("macro", "weighted"):
                expected = function(truth, guess, average=average, zero_division=0)
                assert got[name][average] == pytest.approx(expected), (name, average)
            classes = sorted(set(truth) | set(guess))
            per_class = function(truth, guess, labels=classes, average=None, zero_division=0)
            assert got[name]["one_vs_all"] == pytest.approx(dict(zip(classes, per_class)))
        [got] = [r for r in regressed if key(r)]
        assert got["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(part["y"], part["y_hat"]))
        assert got["root_mean_squared_error"] == pytest.approx(np.sqrt(got["mean_squared_error"]))
        assert got["mean_average_error"] == pytest.approx(metrics.mean_absolute_error(part["y"], part["y_hat"]))
        assert got["mean_absolute_percentage_error"] == pytest.approx(
            metrics.mean_absolute_percentage_error(part["y"], part["y_hat"]))
        assert got["r2_score"] == pytest.approx(metrics.r2_score(part["y"], part["y_hat"]))


def test_a_high_cardinality_slice_keeps_its_most_frequent_values_only(spark):
    values = [f"v{i:03d}" for i in range(150) for _ in range(1 + (i < 100))]  # v000..v099 twice, others once
    df = spark.createDataFrame([(v,) for v in values], "code string")
    rows = profile(spark, df, WINDOW, grouping=Grouping(slicing_exprs=("code",))).collect()
    sliced = {r["slice_value"] for r in rows if r["slice_key"] == "code"}
    assert sliced == {f"v{i:03d}" for i in range(100)}
    assert [r["count"] for r in rows if r["slice_key"] is None and r["column_name"] == TABLE_ROW] == [250]
