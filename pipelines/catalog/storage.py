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
from typing import Callable, Mapping
from urllib.parse import urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField, StructType

from pipelines.core.config import PipelineSettings, TableConfig
from pipelines.core.sql import sql_literal

from .session import on_databricks

log = logging.getLogger(__name__)
_ATOMIC_FORMATS = {"delta", "iceberg"}
Accept = Callable[[], None]  # raises to refuse a written version


def configured_format(table: TableConfig, settings: PipelineSettings) -> str | None:
    """The format config.yml asks for: the table's, else the pipeline's; None if neither says."""
    return table.format or settings.format


def table_format(table: TableConfig, settings: PipelineSettings) -> str:
    """The format a table is written in: as configured, else Delta on Databricks and parquet locally
    (no Delta jars here), which is also what a pipeline runtime picks when none is configured."""
    return configured_format(table, settings) or ("delta" if on_databricks() else "parquet")


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
        return table_format(table, self.settings)

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

    def can_discard(self, table: TableConfig) -> bool:
        """Whether a written version can still be refused (`accept` runs after the data is written):
        true for file formats (a version folder), false for Delta/Iceberg (written in place)."""
        return self.format_of(table) not in _ATOMIC_FORMATS

    def write_table(self, table: TableConfig, df: DataFrame, accept: Accept | None = None) -> None:
        """Replace the table with `df`; a failed write leaves the previous version readable.

        `accept` may raise once the data is written, before the catalog points at it (the new version
        is then discarded and the old one stays); for a format written in place it is asked before."""
        self._write_table(table, self.format_of(table), df, accept or _accept_all)
        self.reset_checkpoint(table.name)

    def write_split(self, table: TableConfig, df: DataFrame, flag: str, other: TableConfig,
                    main_drop: tuple[str, ...] = (), accept: Accept | None = None) -> None:
        """One computation, two tables: rows where the boolean column `flag` is false replace `table`
        (without `main_drop`), rows where it is true replace `other`; both swap together."""
        self._write_split(table, self.format_of(table), df, flag, other, main_drop, accept or _accept_all)
        self.reset_checkpoint(table.name)

    def _write_table(self, table: TableConfig, fmt: str, df: DataFrame, accept: Accept) -> None:
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

    def _write_split(self, table: TableConfig, fmt: str, df: DataFrame, flag: str, other: TableConfig,
                     main_drop: tuple[str, ...], accept: Accept) -> None:
        """Rows are partitioned by the flag in one write, and the two tables are registered on the
        two halves, each with its own columns."""
        main_schema = _nullable(df.drop(flag, *main_drop).schema)
        other_schema = _nullable(df.drop(flag).schema)
        if fmt in _ATOMIC_FORMATS:  # materialize once, then split the stored result
            accept()
            staged = f"{table.name}__ldp_checked"
            self._save_in_place(staged, df, fmt, ())
            stored = self.read(staged)
            self._save_in_place(table.name, stored.where(f"NOT `{flag}`").select(
                *main_schema.fieldNames()), fmt, table.partition_cols)
            self._save_in_place(other.name, stored.where(f"`{flag}`").select(
                *other_schema.fieldNames()), fmt, other.partition_cols)
            self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(staged)}")
            self._describe(table)
            return
        version = self._write_version(table.name, df, (flag, *table.partition_cols), fmt)
        _accept_or_discard(version, accept)
        halves = {value: version / f"{flag}={value}" for value in ("false", "true")}
        for half in halves.values():
            half.mkdir(exist_ok=True)  # an empty half is still a valid (empty) table
        previous = self._current_version(table.name)
        self._register(other, fmt, halves["true"], other_schema)
        self._register(table, fmt, halves["false"], main_schema)
        self._drop_other_versions(table.name, keep=version, previous=previous)
        self._drop_other_versions(other.name, keep=version)

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

    def append_stream(self, table: TableConfig, stream: DataFrame) -> int:
        """Process what is new since the last run (availableNow) and append it; the rows appended."""
        checkpoint = self._stream_checkpoint(table, ())
        before = self.count(table.name)
        writer = stream.writeStream.format(self.format_of(table))
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        if self.format_of(table) not in _ATOMIC_FORMATS and not self.exists(table.name):
            writer = writer.option("path", str(self._fresh_stream_location(table.name)))
        query = (writer.trigger(availableNow=True).outputMode("append")
                 .option("checkpointLocation", str(checkpoint)).toTable(self.fqn(table.name)))
        query.awaitTermination()
        self._describe(table)  # toTable cannot set a comment or properties; idempotent
        return self.count(table.name) - before

    def for_each_batch(self, table: TableConfig, stream: DataFrame, handle: Callable[[DataFrame], None],
                       companions: tuple[TableConfig, ...] = ()) -> None:
        """Hand each new micro-batch (persisted) to `handle`, which appends it where it belongs with
        `append`; `companions` are tables written alongside (rebuilt with it). At-least-once delivery,
        as with foreachBatch."""
        checkpoint = self._stream_checkpoint(table, companions)

        def each(batch: DataFrame, batch_id: int) -> None:
            batch = batch.persist()
            try:
                handle(batch)
            finally:
                batch.unpersist()

        query = (stream.writeStream.foreachBatch(each).trigger(availableNow=True)
                 .option("checkpointLocation", str(checkpoint)).start())
        query.awaitTermination()
        for written in (table, *companions):  # foreachBatch wrote via a cloned session: refresh
            if self.exists(written.name):     # this one's cache
                self.spark.catalog.refreshTable(self.fqn(written.name))
        self._describe(table)

    def _stream_checkpoint(self, table: TableConfig, companions: tuple[TableConfig, ...]) -> Path:
        checkpoint = self.checkpoint_dir(table.name)
        if not checkpoint.exists() and self.exists(table.name):
            # The table was written in batch mode (or the checkpoint deleted): rebuild from scratch.
            log.info("no checkpoint for %s: rebuilding it from all input files", table.name)
            for name in (table.name, *(c.name for c in companions)):
                self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(name)}")
        return checkpoint

    def append(self, table: TableConfig, df: DataFrame) -> None:
        """Append rows (a micro-batch) to the table, creating it on first use."""
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


def _accept_all() -> None:
    """Every written version is accepted."""


def _accept_or_discard(version: Path, accept: Accept) -> None:
    """Ask `accept` about a written version; if it refuses, the version folder goes."""
    try:
        accept()
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise


def _properties(properties: Mapping[str, object]) -> str:
    return ", ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in properties.items())
