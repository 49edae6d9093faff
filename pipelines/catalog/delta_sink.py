"""The `type: delta` sink's writer: each write is one Delta commit, so a failed write leaves the copy
as it was, and readers see either the old rows or the new ones.

- `replace`: an overwrite (the copy's schema follows the table's);
- `append`: the rows plus `_ldp_run_id`, written with `replaceWhere` on the run's id: a retried run
  replaces its own rows in the same commit instead of adding them twice;
- `merge`: a Delta MERGE on `keys` (null-safe), updating matched rows and inserting the others; the
  first write creates the copy.
"""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.sinks import LakeflowSink, SinkWriter, register_writer
from pipelines.core.delta_sink import DeltaSink
from pipelines.core.sinks import RUN_ID_COLUMN
from pipelines.core.sources import resolved_path


class DeltaWriter(SinkWriter[DeltaSink]):
    def write(self, df: DataFrame, sink: DeltaSink, table: str) -> int | None:
        location = self._location(sink)
        if sink.mode == "merge" and self._exists(df.sparkSession, sink, location):
            return self._merge(df, sink, location)
        if sink.mode == "append":
            df = df.withColumn(RUN_ID_COLUMN, F.lit(self.run.run_id))
            run_id = self.run.run_id.replace("\\", "\\\\").replace("'", "\\'")  # a SQL string literal
            writer = df.write.format("delta").mode("overwrite").option("replaceWhere",
                                                                       f"{RUN_ID_COLUMN} = '{run_id}'")
        else:
            writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if sink.table:
            writer.saveAsTable(sink.table)
        else:
            writer.save(location)
        return df.count()

    def lakeflow(self, sink: DeltaSink, table: str) -> LakeflowSink:
        """`dp.create_sink(format="delta")` on the named table or the path (an `append` copy), each row
        tagged with the run, the pipeline's update, in `_ldp_run_id`."""
        options = {"tableName": sink.table} if sink.table else {"path": self._location(sink)}
        return LakeflowSink(format="delta", options=options,
                            rows=lambda df: df.withColumn(RUN_ID_COLUMN, F.lit(self.run.run_id)))

    def _location(self, sink: DeltaSink) -> str:
        return sink.table or resolved_path(str(sink.path), self.run.base_dir or Path.cwd())

    @staticmethod
    def _exists(spark: SparkSession, sink: DeltaSink, location: str) -> bool:
        from delta.tables import DeltaTable  # delta-spark locally, the runtime's own on Databricks

        return spark.catalog.tableExists(location) if sink.table else DeltaTable.isDeltaTable(spark, location)

    @staticmethod
    def _merge(df: DataFrame, sink: DeltaSink, location: str) -> int:
        from delta.tables import DeltaTable

        spark = df.sparkSession
        target = DeltaTable.forName(spark, location) if sink.table else DeltaTable.forPath(spark, location)
        matched = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in sink.keys)
        metrics = (target.alias("t").merge(df.alias("s"), matched)
                   .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        return int(metrics.first()["num_affected_rows"])


register_writer("delta", DeltaWriter)
