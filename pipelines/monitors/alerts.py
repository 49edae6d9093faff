"""Alerts: thresholds on the newest profile and drift rows of a monitored table.

An alert looks at the unsliced rows of the newest window of each granularity (a time series profiles
older windows again on every run; they would fire the same alert again and again), for its column.
"""
from __future__ import annotations

from typing import Any, Iterable

from pipelines.core.monitoring import MonitorConfig

Row = dict[str, Any]


def fired_alerts(monitor: MonitorConfig, profile: list[Row], drift: list[Row]) -> list[Row]:
    """Every alert that fires, with the value that fired it: `{metric, column, value, op, threshold}`,
    plus where (granularity, window start, drift type) when that tells two rows apart."""
    newest = newest_windows(profile)
    fired = []
    for alert in monitor.alerts:
        for row in drift if alert.is_drift else profile:
            if (row["column_name"] != alert.column or row["slice_key"] is not None
                    or row["window"]["start"] != newest.get(row["granularity"])):
                continue
            value = metric_value(row, alert.metric)
            if alert.fires(value):
                fired.append({"metric": alert.metric, "column": alert.column, "value": value, "op": alert.op,
                              "threshold": alert.threshold, "granularity": row["granularity"],
                              "window_start": row["window"]["start"].isoformat(),
                              **({"drift_type": row["drift_type"]} if alert.is_drift else {})})
    return fired


def metric_value(row: Row, metric: str) -> Any:
    """`ks_test.pvalue` reads a field of a struct metric."""
    value: Any = row
    for part in metric.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def newest_windows(rows: Iterable[Row]) -> dict[Any, Any]:
    newest: dict[Any, Any] = {}
    for row in rows:
        start = row["window"]["start"]
        if row["granularity"] not in newest or start > newest[row["granularity"]]:
            newest[row["granularity"]] = start
    return newest


def describe(fired: list[Row]) -> str:
    return "; ".join(f"{a['metric']}({a['column']}) = {a['value']:.4g} {a['op']} {a['threshold']:g}"
                     + (f" [{a['drift_type'].lower()}]" if a.get("drift_type") else "") for a in fired)
