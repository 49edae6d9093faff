"""Data quality with DQX: checks declared per table, validated before Spark starts, enforced in one pass.

The runner only sees `Expectations.apply(table, df) -> CheckedFrame`; DQX stays inside this package.
"""
