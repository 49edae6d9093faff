"""What a transformation reads, shared by every runner so they all read it the same way: its upstream
tables and its declared source."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.core.config import FilesSource, Source, TableSource
from pipelines.core.plan import TablePlan
from pipelines.core.source_checks import CORRUPT_RECORD, checks_malformed_records
from pipelines.core.vocabulary import RESULT_COLUMNS


def transformation_inputs(spark: SparkSession, table: TablePlan, base_dir: Path,
                          read: Callable[[str], DataFrame], auto_loader: bool = False,
                          empty_sources: bool = False) -> dict[str, object]:
    """The transformation's arguments: each upstream table by name, with business columns only
    (upstream tables carry DQX's `_warnings`), and `source` if the table declares one
    (`empty_sources`: no row of it, for a dry run that resolves every query on empty inputs)."""
    inputs: dict[str, object] = {dep: without_columns(read(dep), RESULT_COLUMNS)
                                 for dep in table.config.depends_on}
    if table.config.source is not None:
        source = read_source(spark, table.config.source, base_dir, table.streaming, auto_loader,
                             corrupt_record=checks_malformed_records(table.config))
        inputs["source"] = source.where(F.lit(False)) if empty_sources else source
    return inputs


def without_columns(df: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """`df` minus the named columns, if present, without analyzing it: pipeline query functions may
    not analyze, and Spark Connect resolves `drop` eagerly; a column regex is resolved lazily."""
    alternatives = "|".join(re.escape(name) for name in names)
    return df.select(df.colRegex(f"`^(?!({alternatives})$).+$`"))


def read_source(spark: SparkSession, source: Source, base_dir: Path, streaming: bool,
                auto_loader: bool = False, corrupt_record: bool = False) -> DataFrame:
    """Files in batch or as a stream (Auto Loader's `cloudFiles` on Databricks), or an existing table.

    `corrupt_record` (csv/json with a declared schema): a record Spark cannot parse keeps its raw text in
    a `_corrupt_record` string column (null on every good record), which the table's `malformed_record`
    check reads. Auto Loader takes the same option; its `rescuedDataColumn` (values kept aside on a type
    or name mismatch, the record itself kept) is not added: set it in `options` if wanted."""
    if isinstance(source, TableSource):
        return read_table(spark, source.table, streaming)
    assert isinstance(source, FilesSource)
    options = {k: str(v) for k, v in source.options.items()}
    schema = source.schema_ddl
    if corrupt_record and schema:
        options["columnNameOfCorruptRecord"] = CORRUPT_RECORD
        if CORRUPT_RECORD not in schema:
            schema = f"{schema}, {CORRUPT_RECORD} STRING"
    reader: Any
    if streaming and auto_loader:
        reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", source.format)
    else:
        reader = (spark.readStream if streaming else spark.read).format(source.format)
    reader = reader.options(**options)
    if schema:
        reader = reader.schema(schema)
    return reader.load(source.resolved_path(base_dir))


def read_table(spark: SparkSession, name: str, streaming: bool) -> DataFrame:
    """A table as a batch or (reading only what is new) a stream."""
    return spark.readStream.table(name) if streaming else spark.read.table(name)
