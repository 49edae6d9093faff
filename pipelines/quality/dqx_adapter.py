"""Everything the engine takes from DQX beyond its public API, in one version-gated place.

DQX's public `apply_checks` builds and compacts the result arrays for every row, twice per column;
with a few percent failing rows, assembling them only where a check failed halves the cost of checking
(bench/dq_overhead.py). That needs each rule's own result column, which only DQX's internal
`DQRuleManager` builds. The versions this was checked against are `INTERNALS_TESTED`; on any other
DQX version the engine falls back to the public `apply_checks` (same values, slower), and
tests/spark/test_dqx_equivalence.py proves the two agree on every check the example uses.
"""
from __future__ import annotations

import functools
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession

from .offline import workspace_client

INTERNALS_TESTED = ((0, 17),)  # (major, minor) releases whose internals were checked


@functools.lru_cache(maxsize=1)
def dqx_version() -> tuple[int, ...]:
    from databricks.labs.dqx.__version__ import __version__

    return tuple(int(part) for part in __version__.split(".")[:3] if part.isdigit())


def internals_supported() -> bool:
    return dqx_version()[:2] in INTERNALS_TESTED


def new_engine(spark: SparkSession) -> Any:
    """DQX's public engine (a real workspace on Databricks, the offline stand-in elsewhere)."""
    from databricks.labs.dqx.engine import DQEngine

    return DQEngine(workspace_client(), spark=spark)


def deserialize(checks: list[dict[str, Any]]) -> list[Any]:
    """DQX rules from its metadata format (builds Spark Columns: needs a session)."""
    from databricks.labs.dqx.checks_serializer import deserialize_checks

    return list(deserialize_checks(checks))


def is_row_rule(rule: Any) -> bool:
    from databricks.labs.dqx.rule import DQRowRule

    return isinstance(rule, DQRowRule)


def result_schema() -> Any:
    """The type of one `_errors`/`_warnings` column: an array of DQX's result structs."""
    from databricks.labs.dqx.schema import dq_result_schema

    return dq_result_schema


class RuleConditions:
    """Each rule's own DQX result column (its result struct where the check failed, else null),
    built without the per-check analysis DQX does (the caller analyzes the assembled frame once)."""

    def __init__(self, engine: Any, spark: SparkSession):
        self.core = engine._engine  # the DQEngineCore holding run_id and run metadata
        self.spark = spark

    def has_unsafe_filter(self, rule: Any, df: DataFrame) -> bool:
        return bool(self._manager(rule, df, None).has_unsafe_filter)

    def condition(self, rule: Any, df: DataFrame, rule_set: str | None) -> Column:
        """`rule`'s result column; `rule_set` is the `rule_set_fingerprint` of the rules applied with it."""
        manager = self._manager(rule, df, rule_set)
        manager.__dict__["skip_message"] = ""  # a cached_property: no analysis per check
        return manager.process(df).condition

    def _manager(self, rule: Any, df: DataFrame, rule_set: str | None) -> Any:
        from databricks.labs.dqx.manager import DQRuleManager

        core = self.core
        return DQRuleManager(
            check=rule, df=df, spark=self.spark, run_id=core.run_id,
            engine_user_metadata=core.engine_user_metadata, run_time_overwrite=core.run_time_overwrite,
            ref_dfs=None, suppress_skipped=core.suppress_skipped, rule_fingerprint=rule.rule_fingerprint,
            rule_set_fingerprint=rule_set, input_df=df, reference_cache={})


def rule_set_fingerprint(rules: list[Any]) -> str | None:
    """DQX's fingerprint of the rules applied together, as `apply_checks` records it in each result."""
    from databricks.labs.dqx.rule_fingerprint import compute_rule_set_fingerprint

    return compute_rule_set_fingerprint(rules) if rules else None
