"""Reading a table's declared source, shared by every runner so they all read it the same way."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from pipelines.core.config import FilesSource, Source, TableSource


def read_source(spark: SparkSession, source: Source, base_dir: Path, streaming: bool,
                auto_loader: bool = False) -> DataFrame:
    """Files in batch or as a stream (Auto Loader's `cloudFiles` on Databricks), or an existing table."""
    if isinstance(source, TableSource):
        return read_table(spark, source.table, streaming)
    assert isinstance(source, FilesSource)
    options = {k: str(v) for k, v in source.options.items()}
    reader: Any
    if streaming and auto_loader:
        reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", source.format)
    else:
        reader = (spark.readStream if streaming else spark.read).format(source.format)
    reader = reader.options(**options)
    if source.schema_ddl:
        reader = reader.schema(source.schema_ddl)
    return reader.load(source.resolved_path(base_dir))


def read_table(spark: SparkSession, name: str, streaming: bool) -> DataFrame:
    """A table as a batch or (reading only what is new) a stream."""
    return spark.readStream.table(name) if streaming else spark.read.table(name)
