"""Profiling monitors on the after-table seam: after each monitored table is written, its profile and
drift go to `{output_schema}.{table}_profile_metrics` and `{table}_drift_metrics`, in Databricks'
column names and types, and its alerts are evaluated.

Per table: two scans of the written table (`monitors.profile`), one of the baseline table if there
is one, and one small read of the stored profile (the previous windows) for drift, which needs no
scan. A time series profiles every window of its data on every run; a window profiled again replaces
its old rows (so a rerun is idempotent); snapshot windows are one per run and accumulate. The metric
tables are rewritten through the catalog's failure-safe write: a failed write leaves them as they were.
"""
from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from pyspark.sql.window import Window

from pipelines.catalog.storage import TableStore
from pipelines.core.config import TableConfig
from pipelines.core.monitoring import MonitorConfig
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import RunResult, TableResult
from pipelines.core.seam import Read, TableFailed
from pipelines.monitors.alerts import describe, fired_alerts
from pipelines.monitors.digest import digest
from pipelines.monitors.drift import against_baseline, consecutive
from pipelines.monitors.model_quality import FIELDS as MODEL_FIELDS
from pipelines.monitors.model_quality import ModelQuality
from pipelines.monitors.profile import DRIFT_SCHEMA, PROFILE_SCHEMA, Grouping, ProfileOptions, profile_rows

Row = dict[str, Any]


def profile_table(name: str) -> str:
    return f"{name}_profile_metrics"


def drift_table(name: str) -> str:
    return f"{name}_drift_metrics"


class MonitorConsumer:
    name = "monitor"

    def __init__(self, plan: Plan, state: Path, options: ProfileOptions = ProfileOptions()):
        self.plan = plan
        self.state = state
        self.options = options
        self.started = _now()  # the snapshot window of every table of this run
        self._schema_ready = threading.Lock()
        self._stores: dict[int, TableStore] = {}

    def before_write(self, table: TablePlan, output: DataFrame) -> None:
        """Refuse an output lacking a column the monitor names, or on which a slicing expression does
        not resolve (before it is written, where the runner asks; analysis only, no Spark job)."""
        monitor = table.config.monitor
        if monitor is None:
            return
        columns = output.columns
        missing = [f"{key} '{column}'" for key, column in monitor.columns_named().items() if column not in columns]
        if missing:
            raise ValueError(f"the monitor names column(s) the table lacks: {', '.join(missing)}; "
                             f"available: {', '.join(columns)}")
        for expression in monitor.slicing_exprs:
            try:
                output.select(F.expr(expression)).schema
            except Exception as exc:  # noqa: BLE001 - Spark's analysis error, shown in short
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(f"the monitor's slicing expression {expression!r} does not resolve on the "
                                 f"table: {reason}; available columns: {', '.join(columns)}") from None

    def on_table_written(self, table: TablePlan, result: TableResult, read: Read) -> None:
        monitor = table.config.monitor
        if monitor is None:
            return
        df: DataFrame = read()
        self.before_write(table, df)
        store = self._store(df.sparkSession)
        window = (self.started, self.started)  # Databricks: a snapshot's window is the refresh's instant
        grouping = Grouping(monitor.timestamp_col, monitor.granularities, _slices(monitor))
        model = _model(monitor)
        new = profile_rows(df, window, self.options, grouping, model)
        baseline = self._baseline(store, monitor, window)
        drift = consecutive(new, self._previous(store, table.name, new)) + against_baseline(new, baseline)
        schema = StructType(PROFILE_SCHEMA.fields + (MODEL_FIELDS if model else []))
        _replace_windows(store, profile_table(table.name), schema, new + baseline, profile=True)
        _replace_windows(store, drift_table(table.name), DRIFT_SCHEMA, drift, profile=False)
        fired = fired_alerts(monitor, new, drift)
        result.monitor = {"profile_rows": len(new), "drift_rows": len(drift), "alerts": fired,
                          **digest(new, drift)}
        if fired and monitor.on_alert == "fail":
            raise TableFailed(f"monitor alert(s) fired (on_alert: fail): {describe(fired)}")

    def on_run_finished(self, run: RunResult) -> None:
        """Nothing to do: each table's metrics are written as the table is."""

    def _store(self, spark: SparkSession) -> TableStore:
        """The metric tables' schema, created once per session."""
        with self._schema_ready:
            if id(spark) not in self._stores:
                settings = self.plan.pipeline.model_copy(update={"schema_name": self.plan.config.monitoring_schema})
                store = TableStore(spark, settings, self.state)
                store.ensure_schema()
                self._stores[id(spark)] = store
            return self._stores[id(spark)]

    def _baseline(self, store: TableStore, monitor: MonitorConfig, window: tuple[datetime, datetime]) -> list[Row]:
        """The baseline table's profile (unsliced and per slice, one window), stored as BASELINE rows."""
        if not monitor.baseline_table:
            return []
        name = monitor.baseline_table
        pipeline_store = TableStore(store.spark, self.plan.pipeline, self.state)
        df = pipeline_store.read(name) if name in self.plan.config.by_name else store.spark.table(name)
        rows = profile_rows(df, window, self.options, Grouping(slicing_exprs=_slices(monitor)))
        return [{**row, "log_type": "BASELINE"} for row in rows]

    def _previous(self, store: TableStore, name: str, new: list[Row]) -> list[Row]:
        """For each series of `new`, its stored window just before the first new one (one small read)."""
        if not store.exists(profile_table(name)) or not new:
            return []
        firsts: dict[Any, datetime] = {}
        for row in new:
            firsts[row["granularity"]] = min(firsts.get(row["granularity"], row["window"]["start"]),
                                             row["window"]["start"])
        earlier = F.lit(False)
        for granularity, first in firsts.items():
            earlier = earlier | (F.col("granularity").eqNullSafe(F.lit(granularity))
                                 & (F.col("window.start") < F.lit(first)))
        series = ["granularity", "slice_key", "slice_value", "column_name"]
        stored = store.read(profile_table(name)).where((F.col("log_type") == "INPUT") & earlier)
        latest = stored.withColumn("_rank", F.dense_rank().over(
            Window.partitionBy(*series).orderBy(F.col("window.start").desc()))).where("_rank = 1").drop("_rank")
        return [row.asDict(recursive=True) for row in latest.collect()]


def _replace_windows(store: TableStore, name: str, schema: StructType, rows: list[Row], profile: bool) -> None:
    """Append `rows`, replacing stored rows of the same windows (and, for profiles, the old baseline)."""
    new = store.spark.createDataFrame(rows, schema)
    if store.exists(name):
        old = store.read(name).where(~_superseded(rows, profile))
        new = old.unionByName(new)
    elif not rows:
        return
    store.write_table(TableConfig(name=name, layer="gold", comment="Written by ldp_engine's profiling monitor."),
                      new)


def _superseded(rows: list[Row], profile: bool) -> Column:
    windows: dict[Any, set[datetime]] = {}
    for row in rows:
        if row.get("log_type", "INPUT") == "INPUT":
            windows.setdefault(row["granularity"], set()).add(row["window"]["start"])
    condition = F.lit(False)
    for granularity, starts in windows.items():
        condition = condition | (F.col("granularity").eqNullSafe(F.lit(granularity))
                                 & F.col("window.start").isin(*sorted(starts)))
    if profile:
        condition = ((F.col("log_type") == "INPUT") & condition) | (F.col("log_type") == "BASELINE")
    return F.coalesce(condition, F.lit(False))


def _slices(monitor: MonitorConfig) -> tuple[str, ...]:
    """Inference profiles are also sliced by model, as Databricks' are."""
    extra = (monitor.model_id_col,) if monitor.profile == "inference" and monitor.model_id_col else ()
    return tuple(monitor.slicing_exprs) + extra


def _model(monitor: MonitorConfig) -> ModelQuality | None:
    """An inference profile with labels measures the model's quality."""
    if monitor.profile != "inference" or not monitor.label_col:
        return None
    return ModelQuality(str(monitor.problem_type), str(monitor.prediction_col), monitor.label_col)


def _now() -> datetime:
    """Naive local time, as PySpark writes and collects timestamps: comparable with stored windows."""
    return datetime.now()
