"""Native expectations must flag exactly the rows DQX flags: compared row by row on real data."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from pipelines.core.config import TableConfig
from pipelines.quality.enforce import ERRORS, Expectations
from pipelines.quality.native import expectation_sql

ROWS = [("a", "x@y.io", 5, "EUR", " "), (None, "bad", -1, "usd", ""), ("c", None, 200, None, None),
        ("d", "q@r.com", None, "GBP", "ok"), ("", "s@t", 0, "EUR", "z")]
SCHEMA = "id STRING, email STRING, amount INT, currency STRING, note STRING"

CHECKS = [
    {"function": "is_not_null", "arguments": {"column": "id"}},
    {"function": "is_null", "arguments": {"column": "note"}},
    {"function": "is_not_empty", "arguments": {"column": "id"}},
    {"function": "is_not_empty", "arguments": {"column": "note", "trim_strings": True}},
    {"function": "is_not_null_and_not_empty", "arguments": {"column": "id"}},
    {"function": "is_in_list", "arguments": {"column": "currency", "allowed": ["'EUR'", "'GBP'"]}},
    {"function": "is_not_null_and_is_in_list", "arguments": {"column": "currency", "allowed": ["'EUR'"]}},
    {"function": "is_not_less_than", "arguments": {"column": "amount", "limit": 0}},
    {"function": "is_not_greater_than", "arguments": {"column": "amount", "limit": 100, "allow_nulls": False}},
    {"function": "is_in_range", "arguments": {"column": "amount", "min_limit": 0, "max_limit": 100}},
    {"function": "regex_match", "arguments": {"column": "email", "regex": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"}},
    {"function": "regex_match", "arguments": {"column": "email", "regex": "@", "negate": True}},
    {"function": "sql_expression", "arguments": {"expression": "amount * 2 < 300"}},
    {"function": "sql_expression", "arguments": {"expression": "currency = 'EUR'", "negate": True}},
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c['function']}-{sorted(c['arguments'])}")
@pytest.mark.parametrize("filter_", [None, "amount IS NOT NULL AND amount < 100"])
def test_native_sql_flags_the_rows_dqx_flags(spark, tmp_path, check, filter_):
    declared = {"name": "c", "criticality": "error", "check": check, **({"filter": filter_} if filter_ else {})}
    table = TableConfig(name="t", layer="silver", expectations=(declared,))
    config = _config(tmp_path, table)
    df = spark.createDataFrame(ROWS, SCHEMA).withColumn("row", F.monotonically_increasing_id())
    checked = Expectations(spark, config).apply(table, df).df
    by_dqx = {r["row"] for r in checked.where(F.col(ERRORS).isNotNull()).collect()}
    sql = expectation_sql(declared)
    assert sql is not None
    passes = df.withColumn("passes", F.expr(sql)).collect()
    assert all(r["passes"] is not None for r in passes), "an expectation must never be NULL"
    assert {r["row"] for r in passes if not r["passes"]} == by_dqx


def test_checks_without_an_exact_sql_form_are_left_to_the_framework():
    assert expectation_sql({"check": {"function": "is_unique", "arguments": {"columns": ["id"]}}}) is None
    assert expectation_sql({"check": {"function": "is_in_list",
                                      "arguments": {"column": "c", "allowed": ["'a'"], "case_sensitive": False}}}) is None
    assert expectation_sql({"check": {"function": "is_not_null", "for_each_column": ["a", "b"]}}) is None


def _config(tmp_path, table):
    from pipelines.core.config import Config

    return Config(tables=(table,), path=tmp_path / "config.yml")
