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
from typing import Mapping

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from .config import PipelineSettings, TableConfig
from .session import on_databricks

log = logging.getLogger(__name__)
_ATOMIC_FORMATS = {"delta", "iceberg"}


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
        return self.spark.catalog.tableExists(self.fqn(name).replace("`", ""))

    def read(self, name: str) -> DataFrame:
        return self.spark.table(self.fqn(name))

    def count(self, name: str) -> int:
        return self.read(name).count() if self.exists(name) else 0

    # -- batch ---------------------------------------------------------------------------------

    def overwrite(self, table: TableConfig, df: DataFrame) -> int:
        """Replace the table's contents with `df`; return the rows written (counted during the write)."""
        observation = Observation(f"rows_{table.name}_{uuid.uuid4().hex[:8]}")
        observed = df.observe(observation, F.count(F.lit(1)).alias("rows"))
        fmt = self.format_of(table)
        if fmt in _ATOMIC_FORMATS:
            self._overwrite_in_place(table, observed, fmt)
        else:
            self._overwrite_by_swap(table, observed, fmt)
        self.reset_checkpoint(table.name)
        return int(observation.get.get("rows", 0))

    def _overwrite_in_place(self, table: TableConfig, df: DataFrame, fmt: str) -> None:
        writer = df.write.format(fmt).mode("overwrite").option("overwriteSchema", "true")
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        writer.saveAsTable(self.fqn(table.name))
        self._describe(table)

    def _overwrite_by_swap(self, table: TableConfig, df: DataFrame, fmt: str) -> None:
        version = self._new_location(table.name, "v")
        writer = df.write.format(fmt).mode("errorifexists")
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        try:
            writer.save(str(version))
        except BaseException:
            shutil.rmtree(version, ignore_errors=True)
            raise
        self._point_table_at(table, fmt, version)

    def _point_table_at(self, table: TableConfig, fmt: str, location: Path) -> None:
        """Register the new version under a temporary name first, so a rejected CREATE (bad property,
        bad comment) fails before the old table is touched; then swap names."""
        name = self.fqn(table.name)
        staged = self.fqn(f"{table.name}__ldp_staged")
        try:
            self.spark.sql(f"DROP TABLE IF EXISTS {staged}")
            self.spark.sql(f"CREATE TABLE {staged} USING {fmt} LOCATION '{_sql_str(location.as_uri())}'"
                           + self._comment_and_properties(table))
            if table.partition_cols:
                self.spark.sql(f"ALTER TABLE {staged} RECOVER PARTITIONS")
        except BaseException:
            self.spark.sql(f"DROP TABLE IF EXISTS {staged}")
            shutil.rmtree(location, ignore_errors=True)
            raise
        self.spark.sql(f"DROP TABLE IF EXISTS {name}")
        self.spark.sql(f"ALTER TABLE {staged} RENAME TO {name}")
        self._drop_other_versions(table.name, keep=location)

    def _comment_and_properties(self, table: TableConfig) -> str:
        sql = f" COMMENT '{_sql_str(table.comment)}'" if table.comment else ""
        if table.table_properties:
            sql += f" TBLPROPERTIES ({_properties(table.table_properties)})"
        return sql

    def _describe(self, table: TableConfig) -> None:
        name = self.fqn(table.name)
        if table.comment:
            self.spark.sql(f"COMMENT ON TABLE {name} IS '{_sql_str(table.comment)}'")
        if table.table_properties:
            self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({_properties(table.table_properties)})")

    # -- streaming -----------------------------------------------------------------------------

    def append_stream(self, table: TableConfig, stream: DataFrame) -> int:
        """Process what is new since the last run (availableNow) and append it; return rows appended."""
        checkpoint = self.checkpoint_dir(table.name)
        fmt = self.format_of(table)
        if not checkpoint.exists() and self.exists(table.name):
            # The table was written in batch mode (or the checkpoint deleted): rebuild from scratch.
            log.info("no checkpoint for %s: rebuilding it from all input files", table.name)
            self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(table.name)}")
        before = self.count(table.name)
        writer = (stream.writeStream.trigger(availableNow=True).outputMode("append")
                  .format(fmt).option("checkpointLocation", str(checkpoint)))
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        if fmt not in _ATOMIC_FORMATS and not self.exists(table.name):
            location = self._new_location(table.name, "stream")
            writer = writer.option("path", str(location))
            self._drop_other_versions(table.name, keep=location)
        query = writer.toTable(self.fqn(table.name))
        query.awaitTermination()
        if query.exception() is not None:  # pragma: no cover - awaitTermination raises first
            raise query.exception()  # type: ignore[misc]
        self._describe(table)  # toTable cannot set a comment or properties; idempotent
        return self.count(table.name) - before

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

    def _drop_other_versions(self, name: str, keep: Path) -> None:
        root = self._table_root(name)
        if root.is_dir():
            for child in root.iterdir():
                if child != keep:
                    shutil.rmtree(child, ignore_errors=True)


def _sql_str(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def _properties(properties: Mapping[str, object]) -> str:
    return ", ".join(f"'{_sql_str(k)}' = '{_sql_str(v)}'" for k, v in properties.items())
