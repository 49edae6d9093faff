"""A new sink type is one spec class and one writer class, each registered under its `type:`: the Spark
runner then writes it after the table, like the built-in `lakebase` sink, without a change elsewhere."""
from __future__ import annotations

import json

from pipelines.catalog.sinks import SinkRun
from pipelines.consumers.sinks import TableSinks
from pipelines.core.seam import Consumers
from tests.spark.harness import Harness
from tests.toy_sinks import FolderWriter, folder_sink  # noqa: F401 - the fixture

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - {name: nums, layer: bronze, source: {type: table, table: range_src}}
  - name: doubled
    layer: gold
    depends_on: [nums]
    sinks:
      - {type: folder, folder: FOLDER/ok}
      - {type: folder, folder: FOLDER/ro, broken: true}
"""
MODULES = {"bronze/nums.py": "def nums(source):\n    return source\n",
           "gold/doubled.py": "from pyspark.sql import functions as F\n"
                              "def doubled(nums):\n    return nums.select((F.col('id') * 2).alias('twice'))\n"}


def test_the_spark_runner_writes_a_registered_toy_sink_and_reports_each_sink(folder_sink, spark, tmp_path):
    spark.range(4).createOrReplaceTempView("range_src")
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG.replace("FOLDER", str(tmp_path / "sinks")))
    consumers = Consumers([TableSinks(SinkRun("run-toy"))], run_id="run-toy")
    tables, result = harness.run(consumers=consumers)

    doubled = tables["doubled"]
    assert doubled.sinks == [
        {"type": "folder", "target": f"{tmp_path}/sinks/ok/doubled", "mode": "replace", "rows": 4,
         "status": "success", "error": None},
        {"type": "folder", "target": f"{tmp_path}/sinks/ro/doubled", "mode": "replace", "rows": None,
         "status": "failed", "error": f"OSError: {tmp_path}/sinks/ro is read-only"}]
    assert doubled.succeeded and not result.succeeded  # the table is written; its failed sink fails the run
    assert doubled.consumer_errors["sinks"].startswith("RuntimeError: 1 sink(s) failed, target(s) unchanged")
    written = sorted(json.loads(line)["twice"] for part in (tmp_path / "sinks/ok/doubled").glob("part-*")
                     for line in part.read_text().splitlines())
    assert written == [0, 2, 4, 6]
    assert harness.table("doubled").count() == 4
    assert "sinks" not in (tables["nums"].to_dict())  # a table without sinks reports none
    assert FolderWriter.closed[-1:] == ["run-toy"]  # one writer per type per run, closed when it ends
