"""Each selected table's output columns, found by resolving its transformation on empty inputs: what a
run would write, without running it (`ldp_engine plan`).

In plan order: a table reads its upstream tables as resolved here, or, outside the selection, empty
frames of their stored columns; its source reads no row. A table that cannot be resolved (a source that
must connect to be read, an upstream neither selected nor stored) says why instead, and so do the
tables downstream of it. A CDC target's columns are those of the change events applied to it (AUTO CDC
on the resolved, empty, feed: `__START_AT`/`__END_AT` for type 2), not its transformation's.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.cdc import apply_changes, apply_snapshot_events, snapshot_events
from pipelines.catalog.sources import flows_rows, transformation_inputs
from pipelines.core.config import TableConfig
from pipelines.core.contracts import schema_ddl
from pipelines.core.errors import describe_error
from pipelines.core.loader import Transformation, call_transformation
from pipelines.core.outputs import MaterializedView
from pipelines.core.plan import Plan, TablePlan
from pipelines.quality.materialize import SNAPSHOT_VERSION

Columns = Mapping[str, str]


def resolve_columns(spark: SparkSession, plan: Plan, functions: Mapping[str, Transformation],
                    stored: Mapping[str, Columns | None]) -> dict[str, Columns | str]:
    """Table -> its output columns (name -> type as Spark prints it), or why they are unknown."""
    frames: dict[str, DataFrame] = {}
    resolved: dict[str, Columns | str] = {}

    def read(name: str) -> DataFrame:
        if name in frames:
            return frames[name]
        if isinstance(resolved.get(name), str):
            raise LookupError(f"upstream {name} could not be resolved")
        columns = stored.get(name)
        if not columns:
            raise LookupError(f"upstream {name} is neither selected nor stored with readable columns")
        return spark.createDataFrame([], schema_ddl((), masks=False, extra=list(columns.items())))

    for table in plan.tables:
        try:
            def rows_of(reading: TablePlan) -> DataFrame:
                inputs = transformation_inputs(spark, reading, plan.config.base_dir, read, empty_sources=True)
                df = call_transformation(functions[reading.name], inputs, spark)
                if not isinstance(df, DataFrame):
                    raise TypeError(f"the transformation returned {type(df).__name__}, expected a DataFrame")
                return df

            batch = dataclasses.replace(table, output=MaterializedView())  # a flow's stream: resolved in batch
            df = flows_rows(batch, rows_of) if table.config.flows else rows_of(table)
            if table.config.applies_changes:
                df = cdc_target(table.config, df)
            resolved[table.name] = {f.name: f.dataType.simpleString() for f in df.schema.fields}
            frames[table.name] = df
        except Exception as exc:  # noqa: BLE001 - reported on the table, the plan goes on
            resolved[table.name] = describe_error(exc)
    return resolved


def cdc_target(config: TableConfig, feed: DataFrame) -> DataFrame:
    """A CDC target's rows as a run computes them from `feed` (its checked input), all events new: the
    same AUTO CDC functions the Spark runner's materializer applies."""
    if config.cdc is not None:
        return apply_changes(feed, config.cdc, table=config.name)
    spec = config.snapshot_cdc
    assert spec is not None
    version = spec.version_by or SNAPSHOT_VERSION  # a re-read snapshot is versioned by when it is taken
    snapshot = feed if spec.version_by else feed.withColumn(version, F.current_timestamp())
    events = snapshot_events(snapshot, spec, version=version, table=config.name)
    return apply_snapshot_events(events, spec, table=config.name)
