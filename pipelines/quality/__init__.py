"""Data quality with DQX: checks declared per table, validated before Spark starts, enforced in one pass.

A runner only asks `Materializer.materialize(table, df)` (the policy: quarantine, drop, fail) and, for
pipeline datasets, `Expectations.apply`; DQX stays inside this package, its internals in `dqx_adapter`.
"""

__all__ = ["checks", "enforce", "materialize", "native", "generate", "offline", "dqx_adapter"]  # public modules
