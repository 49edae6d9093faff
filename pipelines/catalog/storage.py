"""Where tables are written and read: the catalog, with failure-safe rewrites and streaming appends.

Delta rewrites are atomic by themselves. File formats (parquet locally) are not: Spark's
`saveAsTable(mode="overwrite")` drops the old table before writing, so a failed write loses it.
Here each rewrite goes to a fresh version folder, and only after it succeeded is the catalog
entry pointed at it; the old version stays readable until then.
"""
from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from pipelines.quality.enforce import ERRORS, CheckedFrame, QualityFailure, QualityStats, quarantine_config

from pipelines.core.config import PipelineSettings, TableConfig
from pipelines.core.errors import Problem
from .session import on_databricks
from pipelines.core.sql import sql_literal

log = logging.getLogger(__name__)
_ATOMIC_FORMATS = {"delta", "iceberg"}
QUARANTINE_FLAG = "_ldp_quarantined"


@dataclass(frozen=True)
class WriteStats:
    rows_written: int
    quality: QualityStats

    @classmethod
    def observed(cls, values: dict[str, Any], checked: CheckedFrame | None) -> "WriteStats":
        """From observed counts: rows kept in the table = rows seen - quarantined - dropped."""
        quality = checked.stats(values) if checked else QualityStats()
        rows = int(values.get("rows", 0)) - quality.rows_quarantined - quality.rows_dropped
        return cls(rows_written=rows, quality=quality)


def _nullable(schema: StructType) -> StructType:
    """Catalog schemas for file tables: top-level columns nullable (file tables enforce no NOT NULL)."""
    return StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


@dataclass(frozen=True)
class TableStore:
    """The tables of one pipeline (catalog.schema) plus the local folder for checkpoints."""

    spark: SparkSession
    settings: PipelineSettings
    state: Path

    def fqn(self, name: str) -> str:
        parts = [self.settings.catalog] if self.settings.catalog and on_databricks() else []
        return ".".join(f"`{p}`" for p in parts + [self.settings.schema_name, name])

    def ensure_schema(self) -> None:
        prefix = f"`{self.settings.catalog}`." if self.settings.catalog and on_databricks() else ""
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {prefix}`{self.settings.schema_name}`")

    def format_of(self, table: TableConfig) -> str:
        return table.format or self.settings.format or ("delta" if on_databricks() else "parquet")

    def exists(self, name: str) -> bool:
        return self.spark.catalog.tableExists(self._catalog_name(name))

    def _catalog_name(self, name: str) -> str:
        """fqn without quotes, as the spark.catalog methods take it."""
        return self.fqn(name).replace("`", "")

    def read(self, name: str) -> DataFrame:
        return self.spark.table(self.fqn(name))

    def count(self, name: str) -> int:
        if not self.exists(name):
            return 0
        self.spark.catalog.refreshTable(self.fqn(name))  # file listings are cached per session
        return self.read(name).count()

    # -- batch ---------------------------------------------------------------------------------

    def overwrite(self, table: TableConfig, df: DataFrame, checked: CheckedFrame | None = None,
                  accept: Callable[[], None] | None = None) -> WriteStats:
        """Replace the table (and its quarantine table) with `df`, evaluating checks in the same pass.

        Rows written and per-check failures are counted by an Observation during the write itself.
        `accept` may raise once the data is written, before the catalog points at it (the run gave
        up on the table meanwhile): the new version is discarded and the old one stays.
        """
        observation = Observation(f"write_{table.name}_{uuid.uuid4().hex[:8]}")
        source = checked.df if checked is not None else df
        metrics = [F.count(F.lit(1)).alias("rows")] + (checked.metrics() if checked else [])
        observed = source.observe(observation, *metrics)
        fmt = self.format_of(table)
        accept = accept or (lambda: None)
        if checked is None:
            self._write_table(table, fmt, observed, accept)
        elif checked.on_error == "drop":
            self._write_table(table, fmt, observed.where(~checked.has_errors).drop(ERRORS), accept)
        elif checked.on_error == "fail":
            self._write_unless_errors(table, fmt, observed, checked, observation, accept)
        else:
            self._write_with_quarantine(table, fmt, observed, checked, accept)
        self.reset_checkpoint(table.name)
        return WriteStats.observed(observation.get, checked)

    def _write_table(self, table: TableConfig, fmt: str, df: DataFrame, accept: Callable[[], None]) -> None:
        """Write a new version; `accept` may raise after the data is written and before the catalog
        points at it (the new version is then discarded and the old table stays). An in-place
        (atomic-format) write cannot be undone: `accept` is asked before it starts."""
        if fmt in _ATOMIC_FORMATS:
            accept()
            self._save_in_place(table.name, df, fmt, table.partition_cols)
            self._describe(table)
            return
        version = self._write_version(table.name, df, table.partition_cols, fmt)
        _accept_or_discard(version, accept)
        previous = self._current_version(table.name)
        self._register(table, fmt, version, _nullable(df.schema))
        self._drop_other_versions(table.name, keep=version, previous=previous)

    def _write_unless_errors(self, table: TableConfig, fmt: str, df: DataFrame, checked: CheckedFrame,
                             observation: Observation, accept: Callable[[], None]) -> None:
        """on_error: fail — a row failing an error-level check fails the table; nothing is replaced."""
        if fmt in _ATOMIC_FORMATS:  # cannot undo an in-place write: count first (a second pass)
            failing = checked.df.where(checked.has_errors).limit(1).count()
            if failing:
                raise self._failure(table, checked, checked.df.agg(*checked.metrics()).first().asDict())
            self._write_table(table, fmt, df.drop(ERRORS), accept)
            return

        def no_error_rows() -> None:  # counted by the observation during the write
            if observation.get.get("dq_error_rows", 0):
                raise self._failure(table, checked, observation.get)
            accept()

        self._write_table(table, fmt, df.drop(ERRORS), accept=no_error_rows)

    def _failure(self, table: TableConfig, checked: CheckedFrame, values: dict[str, Any]) -> Exception:
        failed = [f"{c['name']}: {c['failed']}" for c in checked.stats(values).checks
                  if c["failed"] and c["criticality"] == "error"]
        return QualityFailure(Problem(
            f"{values.get('dq_error_rows')} row(s) failed error-level checks ({', '.join(failed)}); "
            "on_error is 'fail', so the table was not written", table=table.name, key="on_error"))

    def _write_with_quarantine(self, table: TableConfig, fmt: str, df: DataFrame,
                               checked: CheckedFrame, accept: Callable[[], None]) -> None:
        """One computation, one write: rows are partitioned by a quarantine flag, and the main and
        quarantine tables are registered on the two halves, each with its own columns."""
        flagged = df.withColumn(QUARANTINE_FLAG, checked.has_errors)
        main_schema = _nullable(df.drop(ERRORS).schema)
        quarantine_schema = _nullable(df.schema)
        quarantine = quarantine_config(table)
        if fmt in _ATOMIC_FORMATS:  # materialize once, then split the stored result
            accept()
            staged = f"{table.name}__ldp_checked"
            self._save_in_place(staged, flagged, fmt, ())
            stored = self.read(staged)
            self._save_in_place(table.name, stored.where(f"NOT {QUARANTINE_FLAG}").select(
                *main_schema.fieldNames()), fmt, table.partition_cols)
            self._save_in_place(quarantine.name, stored.where(QUARANTINE_FLAG).select(
                *quarantine_schema.fieldNames()), fmt, table.partition_cols)
            self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(staged)}")
            self._describe(table)
            return
        version = self._write_version(table.name, flagged, (QUARANTINE_FLAG, *table.partition_cols), fmt)
        _accept_or_discard(version, accept)
        halves = {flag: version / f"{QUARANTINE_FLAG}={flag}" for flag in ("false", "true")}
        for half in halves.values():
            half.mkdir(exist_ok=True)  # an empty half is still a valid (empty) table
        previous = self._current_version(table.name)
        self._register(quarantine, fmt, halves["true"], quarantine_schema)
        self._register(table, fmt, halves["false"], main_schema)
        self._drop_other_versions(table.name, keep=version, previous=previous)
        self._drop_other_versions(quarantine.name, keep=version)

    def _save_in_place(self, name: str, df: DataFrame, fmt: str, partition_cols: tuple[str, ...]) -> None:
        writer = df.write.format(fmt).mode("overwrite").option("overwriteSchema", "true")
        if partition_cols:
            writer = writer.partitionBy(*partition_cols)
        writer.saveAsTable(self.fqn(name))

    def _write_version(self, name: str, df: DataFrame, partition_cols: tuple[str, ...], fmt: str) -> Path:
        version = self._new_location(name, "v")
        writer = df.write.format(fmt).mode("errorifexists")
        if partition_cols:
            writer = writer.partitionBy(*partition_cols)
        try:
            writer.save(str(version))
        except BaseException:
            shutil.rmtree(version, ignore_errors=True)
            raise
        return version

    def _register(self, table: TableConfig, fmt: str, location: Path, schema: StructType) -> None:
        """Point the catalog at a new version. Same schema, unpartitioned: one atomic SET LOCATION.
        Otherwise register it under a staging name first, so a rejected CREATE (bad property,
        bad comment) fails before the old table is touched, then swap names."""
        name, staged = self.fqn(table.name), self.fqn(f"{table.name}__ldp_staged")
        if not table.partition_cols and self._schema(table.name) == schema:
            self._describe(table)  # first: a rejected property must not leave the table half-replaced
            self.spark.sql(f"ALTER TABLE {name} SET LOCATION {sql_literal(location)}")
            return
        partitioned = f" PARTITIONED BY ({', '.join(f'`{c}`' for c in table.partition_cols)})" \
            if table.partition_cols else ""
        try:
            self.spark.sql(f"DROP TABLE IF EXISTS {staged}")
            self.spark.sql(f"CREATE TABLE {staged} ({schema.toDDL()}) USING {fmt}{partitioned} "
                           f"LOCATION {sql_literal(location)}" + self._comment_and_properties(table))
            if table.partition_cols:
                self.spark.sql(f"ALTER TABLE {staged} RECOVER PARTITIONS")
        except BaseException:
            self.spark.sql(f"DROP TABLE IF EXISTS {staged}")
            raise
        self.spark.sql(f"DROP TABLE IF EXISTS {name}")
        self.spark.sql(f"ALTER TABLE {staged} RENAME TO {name}")

    def _comment_and_properties(self, table: TableConfig) -> str:
        sql = f" COMMENT {sql_literal(table.comment)}" if table.comment else ""
        if table.table_properties:
            sql += f" TBLPROPERTIES ({_properties(table.table_properties)})"
        return sql

    def _schema(self, name: str) -> StructType | None:
        """The table's schema, None if there is no such table (one catalog request, not two)."""
        try:
            return self.read(name).schema
        except AnalysisException:
            return None

    def _describe(self, table: TableConfig) -> None:
        name = self.fqn(table.name)
        catalog = self.spark.catalog
        if table.comment and catalog.getTable(self._catalog_name(table.name)).description != table.comment:
            self.spark.sql(f"COMMENT ON TABLE {name} IS {sql_literal(table.comment)}")  # a metastore write
        if table.table_properties:
            self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({_properties(table.table_properties)})")

    # -- streaming -----------------------------------------------------------------------------

    def append_stream(self, table: TableConfig, stream: DataFrame, checked: CheckedFrame | None = None
                      ) -> WriteStats:
        """Process what is new since the last run (availableNow) and append it."""
        checkpoint = self.checkpoint_dir(table.name)
        if not checkpoint.exists() and self.exists(table.name):
            # The table was written in batch mode (or the checkpoint deleted): rebuild from scratch.
            log.info("no checkpoint for %s: rebuilding it from all input files", table.name)
            for name in (table.name, quarantine_config(table).name):
                self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(name)}")
        before = self.count(table.name)
        if checked is None:
            writer = stream.writeStream.format(self.format_of(table))
            if table.partition_cols:
                writer = writer.partitionBy(*table.partition_cols)
            if self.format_of(table) not in _ATOMIC_FORMATS and not self.exists(table.name):
                writer = writer.option("path", str(self._fresh_stream_location(table.name)))
            query = (writer.trigger(availableNow=True).outputMode("append")
                     .option("checkpointLocation", str(checkpoint)).toTable(self.fqn(table.name)))
            query.awaitTermination()
            self._describe(table)  # toTable cannot set a comment or properties; idempotent
            return WriteStats(rows_written=self.count(table.name) - before, quality=QualityStats())
        stats = self._append_checked_stream(table, checked, checkpoint)
        self._describe(table)
        return stats

    def _append_checked_stream(self, table: TableConfig, checked: CheckedFrame, checkpoint: Path
                               ) -> WriteStats:
        """Each micro-batch is checked once (persisted), then its valid rows are appended to the table
        and its failing rows to the quarantine table. Delivery is at-least-once, as with foreachBatch."""
        totals: dict[str, int] = {}

        def write_batch(batch: DataFrame, batch_id: int) -> None:
            batch = batch.persist()
            try:
                values = batch.agg(F.count(F.lit(1)).alias("rows"), *checked.metrics()).first().asDict()
                if checked.on_error == "fail" and values["dq_error_rows"]:
                    raise self._failure(table, checked, values)
                self._append(table, batch.where(~checked.has_errors).drop(ERRORS))
                if checked.on_error == "quarantine":
                    self._append(quarantine_config(table), batch.where(checked.has_errors))
                for key, value in values.items():
                    totals[key] = totals.get(key, 0) + int(value or 0)
            finally:
                batch.unpersist()

        query = (checked.df.writeStream.foreachBatch(write_batch).trigger(availableNow=True)
                 .option("checkpointLocation", str(checkpoint)).start())
        query.awaitTermination()
        for name in (table.name, quarantine_config(table).name):  # foreachBatch wrote via a cloned
            if self.exists(name):                                # session: refresh this one's cache
                self.spark.catalog.refreshTable(self.fqn(name))
        return WriteStats.observed(totals, checked)

    def _append(self, table: TableConfig, df: DataFrame) -> None:
        fmt = self.format_of(table)
        writer = df.write.format(fmt).mode("append")
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        if fmt not in _ATOMIC_FORMATS and not self.exists(table.name):
            writer = writer.option("path", str(self._fresh_stream_location(table.name)))
        writer.saveAsTable(self.fqn(table.name))

    def _fresh_stream_location(self, name: str) -> Path:
        location = self._new_location(name, "stream")
        self._drop_other_versions(name, keep=location)
        return location

    def checkpoint_dir(self, name: str) -> Path:
        return self.state / "checkpoints" / self.settings.schema_name / name

    def reset_checkpoint(self, name: str) -> None:
        shutil.rmtree(self.checkpoint_dir(name), ignore_errors=True)

    # -- local folders ---------------------------------------------------------------------------

    def _table_root(self, name: str) -> Path:
        return self.state / "tables" / self.settings.schema_name / name

    def _new_location(self, name: str, kind: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return self._table_root(name) / f"{kind}-{stamp}-{uuid.uuid4().hex[:8]}"

    def _current_version(self, name: str) -> Path | None:
        """The version folder the catalog points at now (a read planned just before a swap reads
        it, so it is kept until the next write), None if the table is new or elsewhere."""
        try:
            rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {self.fqn(name)}").where(
                "col_name = 'Location'").collect()
        except AnalysisException:
            return None
        location = Path(urlparse(rows[0]["data_type"]).path) if rows else None
        root = self._table_root(name)
        while location is not None and location.parent != location and location.parent != root:
            location = location.parent
        return location if location is not None and location.parent == root else None

    def _drop_other_versions(self, name: str, keep: Path, previous: Path | None = None) -> None:
        """Remove every version folder but `keep` and `previous` (the one just replaced): a failed or
        killed write's leftovers go, readers of the replaced version finish."""
        root = self._table_root(name)
        if root.is_dir():
            for child in root.iterdir():
                if child not in (keep, previous):
                    shutil.rmtree(child, ignore_errors=True)


def _accept_or_discard(version: Path, accept: Callable[[], None]) -> None:
    """Ask `accept` about a written version; if it refuses, the version folder goes."""
    try:
        accept()
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise


def _properties(properties: Mapping[str, object]) -> str:
    return ", ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in properties.items())
