"""Comparing tables written by different runners: same rows, same columns, same check results.

DQX result entries carry the run's id and time, which differ per run by design; everything else
(check name, message, columns, filter, function) must match.
"""
from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.quality.enforce import RESULT_COLUMNS


def comparable(df: DataFrame) -> DataFrame:
    for name in RESULT_COLUMNS:
        if name in df.columns:
            df = df.withColumn(name, F.transform(name, lambda r: F.struct(
                r["name"].alias("name"), r["message"].alias("message"), r["columns"].alias("columns"),
                r["filter"].alias("filter"), r["function"].alias("function"))))
    return df


def assert_same_table(actual: DataFrame, expected: DataFrame) -> None:
    assert_df_equality(comparable(actual), comparable(expected), ignore_row_order=True,
                       ignore_column_order=True, ignore_nullable=True)  # partition columns go last
