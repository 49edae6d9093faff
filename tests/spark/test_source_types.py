"""A new source type is one spec class and one reader class, each registered under its `type:`: the Spark
runner then reads it like a built-in one, without a change anywhere else."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from pipelines.catalog import sources as readers
from pipelines.core import sources
from pipelines.core.errors import RunError
from tests.spark.harness import Harness
from tests.toy_types import register_source_type


class NumbersSource(sources.SourceSpec):
    """`count` rows numbered from 0 in a column `n` (a batch only)."""

    type: Literal["numbers"]
    count: int = Field(ge=0)


class NumbersReader(readers.SourceReader[NumbersSource]):
    def batch(self, spark, source, options):
        return spark.range(source.count).withColumnRenamed("id", "n")


CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - {name: nums, layer: bronze, source: {type: numbers, count: 5}}
  - {name: total, layer: gold, depends_on: [nums]}
"""
MODULES = {"bronze/nums.py": "def nums(source):\n    return source\n",
           "gold/total.py": "from pyspark.sql import functions as F\n"
                            "def total(nums):\n    return nums.agg(F.sum('n').alias('total'))\n"}


@pytest.fixture
def numbers(monkeypatch):
    return register_source_type(monkeypatch, NumbersSource, NumbersReader())


def test_the_spark_runner_reads_a_registered_toy_source(numbers, spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    tables, result = harness.run()
    assert result.status == "success", [t.error for t in tables.values()]
    assert tables["nums"].rows_written == 5
    assert harness.table("total").collect()[0].total == 10


def test_a_source_type_without_a_stream_reader_says_so(numbers, spark, tmp_path):
    with pytest.raises(RunError, match="'numbers' source cannot be read as a stream"):
        readers.read_source(spark, NumbersSource(type="numbers", count=1), Path(tmp_path), streaming=True)
