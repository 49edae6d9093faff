"""The engine's fast path (`dqx_adapter`: each rule's own result column, assembled only where a check
failed) gives exactly DQX's public `apply_checks` results: same rows, same `_errors` / `_warnings`
entries in the same order, minus the run's id and time. The fixture exercises every check function
the example uses, a filter, `for_each_column`, user metadata, and both criticalities."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.config import Config, TableConfig
from pipelines.quality import dqx_adapter
from pipelines.quality.enforce import ERRORS, WARNINGS, Expectations

CHECKS = [
    {"name": "id_not_null", "criticality": "error",
     "check": {"function": "is_not_null", "arguments": {"column": "id"}}},
    {"name": "email_valid", "criticality": "error", "filter": "email IS NOT NULL",
     "check": {"function": "regex_match", "arguments": {"column": "email", "regex": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"}}},
    {"name": "amount_not_negative", "criticality": "error",
     "check": {"function": "sql_expression", "arguments": {"expression": "amount >= 0", "msg": "amount is negative"}}},
    {"criticality": "warn",  # unnamed: DQX derives each name
     "check": {"function": "is_not_null", "for_each_column": ["country", "email"]}},
    {"name": "not_late", "criticality": "warn", "user_metadata": {"reason": "late landing"},
     "check": {"function": "sql_expression", "arguments": {"expression": "NOT is_late", "msg": "late"}}},
]
ROWS = [  # id, email, amount, country, is_late
    (1, "ana@example.com", 10.0, "PT", False),   # clean
    (None, "bob@example.com", 5.0, "ES", False),  # error: id
    (3, "not-an-email", -1.0, None, True),        # errors: email, amount; warns: country, late
    (4, None, 2.0, "FR", False),                  # email filtered out of email_valid; warn: email
    (5, "eve@example.org", None, None, True),      # warns only (amount null: the expression is null)
]
RUN_FIELDS = ("run_time", "run_id")


def _results(df: Any) -> list[tuple[Any, ...]]:
    def entries(values: Any) -> Any:
        if values is None:
            return None
        return [{k: v for k, v in entry.asDict(recursive=True).items() if k not in RUN_FIELDS}
                for entry in values]

    return sorted(((row["id"] or 0, row["email"] or "", entries(row[ERRORS]), entries(row[WARNINGS]))
                   for row in df.collect()), key=lambda r: (r[0], r[1]))


def test_the_fast_path_equals_dqx_apply_checks(spark):
    assert dqx_adapter.internals_supported(), "DQX outside the tested versions: the fast path is off"
    df = spark.createDataFrame(ROWS, "id int, email string, amount double, country string, is_late boolean")
    table = TableConfig(name="t", layer="silver", expectations=tuple(CHECKS))
    expectations = Expectations(spark, Config(tables=(table,), path=Path("config.yml")))
    ours = expectations.apply(table, df)
    assert ours is not None
    rules = dqx_adapter.deserialize(CHECKS)
    public = expectations.engine.apply_checks(df, rules)

    assert ours.df.schema == public.schema
    expected = _results(public)
    assert _results(ours.df) == expected
    assert [r[2] is not None for r in expected] == [True, False, True, False, False]  # the fixture bites
    assert sum(len(r[3] or []) for r in expected) == 5  # country x2, email x1, late x2
