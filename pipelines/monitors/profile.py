"""A snapshot profile of a DataFrame in Databricks data profiling's `{table}_profile_metrics` schema.

Fast by construction: whatever the number of columns, the input is scanned by **two** queries — one
fused aggregation (counts, nulls, zeros, NaN, moments, lengths, min / max, distinct and quantile
sketches for every column at once) and one melt + group-by for the frequent items of the string and
boolean columns. The per-column loop of DQX's profiler or ydata-profiling (one job per column) is
what this avoids (bench/profile_cost.py). Rows are assembled on the driver from the two results.

Approximations (documented bounds): `quantiles` and `median` come from `percentile_approx` with
`accuracy` (default 10,000: rank error ≤ 1/accuracy of the row count); `distinct_count` from
`approx_count_distinct` (HyperLogLog++, relative standard deviation 0.05 by default). Everything else
is exact. `percent_*` are percentages (0–100) of the window's row count.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

TABLE_ROW = ":table"
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_FREQUENT = (T.StringType, T.BooleanType)

PROFILE_SCHEMA = T.StructType([
    T.StructField("window", T.StructType([T.StructField("start", T.TimestampType()),
                                          T.StructField("end", T.TimestampType())])),
    T.StructField("log_type", T.StringType()),
    T.StructField("logging_table_commit_version", T.IntegerType()),
    T.StructField("monitor_version", T.LongType()),
    T.StructField("granularity", T.StringType()),
    T.StructField("slice_key", T.StringType()),
    T.StructField("slice_value", T.StringType()),
    T.StructField("column_name", T.StringType()),
    T.StructField("count", T.LongType()),
    T.StructField("data_type", T.StringType()),
    T.StructField("num_nulls", T.LongType()),
    T.StructField("avg", T.DoubleType()),
    T.StructField("quantiles", T.ArrayType(T.DoubleType())),
    T.StructField("min", T.DoubleType()),
    T.StructField("max", T.DoubleType()),
    T.StructField("stddev", T.DoubleType()),
    T.StructField("num_zeros", T.LongType()),
    T.StructField("num_nan", T.LongType()),
    T.StructField("min_length", T.DoubleType()),
    T.StructField("max_length", T.DoubleType()),
    T.StructField("avg_length", T.DoubleType()),
    T.StructField("non_null_columns", T.ArrayType(T.StringType())),
    T.StructField("frequent_items", T.ArrayType(T.StructType([T.StructField("item", T.StringType()),
                                                              T.StructField("count", T.LongType())]))),
    T.StructField("median", T.DoubleType()),
    T.StructField("distinct_count", T.LongType()),
    T.StructField("percent_nan", T.DoubleType()),
    T.StructField("percent_null", T.DoubleType()),
    T.StructField("percent_zeros", T.DoubleType()),
    T.StructField("percent_distinct", T.DoubleType()),
])


@dataclass(frozen=True)
class ProfileOptions:
    quantiles: tuple[float, ...] = QUANTILES
    accuracy: int = 10_000  # percentile_approx: rank error <= rows / accuracy
    top_k: int = 10  # frequent items kept per column
    monitor_version: int = 0


def profile(spark: SparkSession, df: DataFrame, window: tuple[datetime, datetime],
            options: ProfileOptions = ProfileOptions()) -> DataFrame:
    """The snapshot profile of `df` for one window: one row per column and one `:table` row."""
    fields = [f for f in df.schema.fields if not f.name.startswith("_")]  # not DQX's result columns
    aggregates = [c for i, f in enumerate(fields) for c in _aggregates(i, f, options)]
    stats = df.agg(F.count(F.lit(1)).alias("n"), *aggregates).first().asDict()
    frequent = _frequent_items(df, [f for f in fields if isinstance(f.dataType, _FREQUENT)], options.top_k)
    rows = [_column_row(i, f, stats, frequent.get(f.name)) for i, f in enumerate(fields)]
    rows.append(_table_row(fields, stats))
    base = {"window": {"start": window[0], "end": window[1]}, "log_type": "INPUT",
            "logging_table_commit_version": None, "monitor_version": options.monitor_version,
            "granularity": None, "slice_key": None, "slice_value": None}
    return spark.createDataFrame([{**base, **row} for row in rows], PROFILE_SCHEMA)


def _aggregates(index: int, field: T.StructField, options: ProfileOptions) -> list[Column]:
    """Column `index`'s aggregates, aliased `c{index}_{metric}` (column names may hold anything)."""
    name, kind = f"c{index}", field.dataType
    column = F.col(f"`{field.name}`")
    out = [F.count(column).alias(f"{name}_non_null"), F.approx_count_distinct(column).alias(f"{name}_distinct")]
    if isinstance(kind, _NUMERIC):
        value = column.cast("double")
        out += [F.count_if(value == 0).alias(f"{name}_zeros"), F.min(value).alias(f"{name}_min"),
                F.max(value).alias(f"{name}_max"), F.avg(value).alias(f"{name}_avg"),
                F.stddev_samp(value).alias(f"{name}_stddev"),
                F.percentile_approx(value, list(options.quantiles) + [0.5], options.accuracy)
                .alias(f"{name}_quantiles")]
        if isinstance(kind, (T.FloatType, T.DoubleType)):
            out.append(F.count_if(F.isnan(column)).alias(f"{name}_nan"))
    elif isinstance(kind, T.StringType):
        length = F.length(column)
        out += [F.min(length).alias(f"{name}_min_length"), F.max(length).alias(f"{name}_max_length"),
                F.avg(length).alias(f"{name}_avg_length")]
    return out


def _frequent_items(df: DataFrame, fields: list[T.StructField], top_k: int) -> dict[str, list[dict[str, Any]]]:
    """One melt + group-by over every string / boolean column: the `top_k` most frequent values each."""
    if not fields:
        return {}
    melted = df.select(F.explode(F.array(*[
        F.struct(F.lit(f.name).alias("column_name"), F.col(f"`{f.name}`").cast("string").alias("item"))
        for f in fields])).alias("cell")).select("cell.*").where(F.col("item").isNotNull())
    counted = melted.groupBy("column_name", "item").count()
    ranked = counted.withColumn("rank", F.row_number().over(
        Window.partitionBy("column_name").orderBy(F.desc("count"), F.asc("item"))))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in ranked.where(F.col("rank") <= top_k).orderBy("column_name", "rank").collect():
        found.setdefault(row["column_name"], []).append({"item": row["item"], "count": row["count"]})
    return found


def _column_row(index: int, field: T.StructField, stats: dict[str, Any],
                frequent: list[dict[str, Any]] | None) -> dict[str, Any]:
    rows, non_null = int(stats["n"]), int(stats[f"c{index}_non_null"])

    def get(metric: str) -> Any:
        return stats.get(f"c{index}_{metric}")

    def percent(count: Any) -> float | None:
        return None if count is None or rows == 0 else 100.0 * float(count) / rows

    quantiles = get("quantiles")
    distinct = get("distinct")
    row = {"column_name": field.name, "data_type": field.dataType.simpleString(), "count": rows,
           "num_nulls": rows - non_null, "percent_null": percent(rows - non_null),
           "distinct_count": distinct, "percent_distinct": percent(distinct),
           "avg": get("avg"), "min": get("min"), "max": get("max"), "stddev": get("stddev"),
           "num_zeros": get("zeros"), "percent_zeros": percent(get("zeros")),
           "num_nan": get("nan"), "percent_nan": percent(get("nan")),
           "min_length": _float(get("min_length")), "max_length": _float(get("max_length")),
           "avg_length": get("avg_length"),
           "quantiles": list(quantiles[:-1]) if quantiles else None,
           "median": quantiles[-1] if quantiles else None,
           "frequent_items": frequent, "non_null_columns": None}
    return row


def _table_row(fields: list[T.StructField], stats: dict[str, Any]) -> dict[str, Any]:
    return {"column_name": TABLE_ROW, "count": int(stats["n"]), "data_type": None,
            "non_null_columns": [f.name for i, f in enumerate(fields) if stats[f"c{i}_non_null"]]}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
