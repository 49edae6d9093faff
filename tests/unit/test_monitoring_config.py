"""The monitor: and monitoring: blocks: every problem located (file, line, table, key, value) before Spark
starts, defaults merged under each monitor, the policy enforced."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import parse_config
from pipelines.core.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("config.yml"))
    return [p.render() for p in caught.value.problems]


def tables(monitor: str, extra: str = "", **other: str) -> str:
    return f"""pipeline: {{schema: s}}
{extra}
tables:
  - name: orders
    layer: silver
    monitor: {monitor}
  - name: revenue
    layer: {other.get("layer", "silver")}
"""


def test_a_full_monitor_loads_with_defaults_merged_under_it():
    config = parse_config(tables(
        '{profile: timeseries, timestamp_col: ts, granularities: ["1 day", "1 week"], slicing_exprs: [currency],'
        ' alerts: [{metric: ks_test.pvalue, column: amount, op: "<", threshold: 0.01}], on_alert: fail}',
        "monitoring: {output_schema: mon, defaults: {owner: team@x.io, on_alert: warn}}"), Path("config.yml"))
    monitor = config.table("orders").monitor
    assert (monitor.profile, monitor.granularities, monitor.owner, monitor.on_alert) == (
        "timeseries", ("1 day", "1 week"), "team@x.io", "fail")  # the table's own key wins
    assert monitor.alerts[0].is_drift and monitor.alerts[0].fires(0.001) and not monitor.alerts[0].fires(0.5)
    assert config.table("revenue").monitor is None and config.monitoring_schema == "mon"
    assert parse_config(tables("{}"), Path("c.yml")).monitoring_schema == "s_monitoring"


@pytest.mark.parametrize("monitor, expected", [
    ('{profile: timeseries}', "config.yml:6, table 'orders', key 'monitor.timestamp_col': profile: timeseries "
                              "needs 'timestamp_col'"),
    ('{profile: timeseries, timestamp_col: ts, granularities: ["2 days"]}',
     "key 'monitor.granularities': unknown granularity '2 days'; Databricks accepts 5 minutes"),
    ('{profile: inference, timestamp_col: ts, granularities: ["1 day"]}',
     "key 'monitor.prediction_col': profile: inference needs 'prediction_col'"),
    ('{profile: drifting}', "key 'monitor.profile': invalid value; expected 'snapshot', 'timeseries' or 'inference'"),
    ('{granularities: ["1 day"]}', "'granularities' applies to timeseries / inference profiles, not to snapshot"),
    ('{alerts: [{metric: nulls, column: a, op: ">", threshold: 1}]}', "unknown metric 'nulls'; profile metrics:"),
    ('{alerts: [{metric: ks_test, column: a, op: ">", threshold: 1}]}',
     "'ks_test' is a struct; name one of its fields: ks_test.statistic, ks_test.pvalue"),
    ('{alerts: [{metric: count, column: a, op: "~", threshold: 1}]}', "key 'monitor.alerts.op': invalid value"),
    ('{baseline_table: orders}', "key 'monitor.baseline_table': a table cannot be its own baseline"),
    ('{on_alert: page}', "key 'monitor.on_alert': invalid value; expected 'warn' or 'fail'"),
    ('{schedul: "0 0 * * * ?"}', "unknown key 'schedul'; did you mean 'schedule'?"),
])
def test_each_monitor_problem_names_the_table_key_and_value(monitor, expected):
    found = problems(tables(monitor))
    assert any(expected in p for p in found), found


def test_the_policy_requires_monitors_keys_and_names():
    policy = ("monitoring:\n  policy: {require_monitor: [gold], required: [owner, runbook_url],"
              " naming_patterns: ['^(orders|revenue)$'], forbidden_patterns: ['^ord']}")
    found = problems(tables("{owner: a@b.c}", policy, layer="gold"))
    assert found == [
        "config.yml:7, table 'orders', key 'monitor.runbook_url': the monitoring policy requires 'runbook_url'",
        "config.yml:7, table 'orders', key 'monitor': the table's name matches the forbidden pattern '^ord' "
        "(got 'orders')",
        "config.yml:8, table 'revenue', key 'monitor': must be monitored: the monitoring policy requires a "
        "monitor for 'gold' tables; add a 'monitor:' block (monitor: {} takes monitoring.defaults)"]


@pytest.mark.parametrize("block, expected", [
    ("monitoring: {policy: {required: [ownr]}}", "key 'monitoring.policy.required': names no monitor key: ownr"),
    ("monitoring: {defaults: {profile: x, colour: red}}", "names no monitor key: colour"),
    ("monitoring: {policy: {naming_patterns: ['(']}}", "'(' is not a regular expression"),
    ("monitoring: {stale_days: 0}", "key 'monitoring.stale_days'"),
    ("monitoring: {output_schema: 'a b'}", "must be a schema name"),
])
def test_monitoring_block_problems(block, expected):
    found = problems(tables("{}", block))
    assert any(expected in p for p in found), found


def test_inference_needs_a_baseline_when_the_policy_says_so():
    monitor = ('{profile: inference, timestamp_col: ts, granularities: ["1 day"], prediction_col: p, '
               'model_id_col: m, problem_type: classification}')
    assert parse_config(tables(monitor), Path("c.yml")).table("orders").monitor.problem_type == "classification"
    found = problems(tables(monitor, "monitoring: {policy: {require_baseline: true}}"))
    assert any("requires a baseline_table for inference monitors" in p for p in found), found
