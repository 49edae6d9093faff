"""Propose checks for a table from its current data, with DQX's profiler and rule generator.

The output is DQX's check format as YAML, for a person to review: profiles describe the data as it
is today, including its mistakes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame, SparkSession

from .offline import workspace_client


def propose_checks(spark: SparkSession, df: DataFrame, criticality: str = "error",
                   sample_fraction: float | None = None) -> list[dict[str, Any]]:
    from databricks.labs.dqx.profiler.generator import DQGenerator
    from databricks.labs.dqx.profiler.profiler import DQProfiler

    workspace = workspace_client()
    options = {"sample_fraction": sample_fraction} if sample_fraction else {"sample_fraction": None}
    _summary, profiles = DQProfiler(workspace, spark=spark).profile(df, options=options)
    return DQGenerator(workspace, spark=spark).generate_dq_rules(profiles, criticality=criticality)


def to_yaml(checks: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(_plain(checks), sort_keys=False, allow_unicode=True)


def write_checks_file(path: Path, checks: list[dict[str, Any]], table: str) -> None:
    header = (f"# DQX checks for {table}, proposed by `ldp_engine rules generate` from the data.\n"
              "# Review before relying on them: profiles describe today's data, mistakes included.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + to_yaml(checks), encoding="utf-8")


def _plain(value: Any) -> Any:
    """Profiles hold dates, decimals and tuples; YAML of plain types reads back everywhere."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
