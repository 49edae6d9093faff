"""The static look at transformations: what fails in a pipeline query function is found with its line
and rewrite, what works (UDF bodies, GroupedData.count, named aggregations, reader schemas) is not."""
from __future__ import annotations

import ast
import json

from click.testing import CliRunner

from pipelines.core.static_checks import find_in_module
from pipelines.engine.cli import cli
from tests.conftest import write_project

MODULE = '''from pyspark.sql import functions as F


@F.pandas_udf("string")
def label(s):
    return s.head().astype(str) if s.count() else s


def helper(df):
    return df.select(*df.columns)


def t(a, spark):
    grouped = a.groupBy("k")
    typed = spark.read.schema("a int").json("p")
    total = a.count()
    a.groupBy("k").sum()
    a.groupBy("k").sum("v")
    grouped.count()
    grouped.pivot("p", ["x"]).max()
    "abc".count("a")
    F.first("x")
    rows = a.collect()
    fields = a.schema.fields
    ignored = a.toPandas()  # ldp: allow
    per_row = lambda d: d.count()
    return helper(a).withColumn("x", label("y"))
'''


def test_findings_name_the_line_of_each_call_that_cannot_run_in_a_pipeline():
    found = [(f.line, f.message.split(",")[0]) for f in find_in_module(ast.parse(MODULE), "t")]
    assert found == [(10, "reads DataFrame.columns"), (16, "calls DataFrame.count()"),
                     (17, "calls GroupedData.sum() without columns"), (20, "calls GroupedData.max() without columns"),
                     (23, "calls DataFrame.collect()"), (24, "reads DataFrame.schema"), (25, "calls DataFrame.toPandas()")]


def test_validate_warns_with_file_line_and_rewrite_and_still_succeeds(tmp_path, monkeypatch):
    config = """
pipeline: {transformations: ./transformations}
tables:
  - {name: s_raw, layer: bronze, source: {type: files, format: json, path: ./landing, options: {mode: PERMISSIVE}}}
  - {name: s_sum, layer: gold, depends_on: [s_raw]}
"""
    write_project(tmp_path, config, {
        "bronze/s_raw.py": "def s_raw(source):\n    return source.select(*source.columns)\n",
        "gold/s_sum.py": "def s_sum(s_raw):\n    x = 1\n    return s_raw.groupBy('k').sum()  # all numeric\n"})
    (tmp_path / "landing").mkdir()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    module = tmp_path / "transformations"
    assert warnings == [
        f"{module / 'bronze/s_raw.py'}:2, table 's_raw', key 'transformation': reads DataFrame.columns, which "
        "analyzes the query: fails on the sdp and pipeline runners (a pipeline builds the plan first and runs it "
        "later); name the columns you need instead of reading them from the DataFrame",
        f"{module / 'gold/s_sum.py'}:3, table 's_sum', key 'transformation': calls GroupedData.sum() without "
        "columns, which needs the schema: fails on the sdp and pipeline runners (a pipeline builds the plan first "
        "and runs it later); name the columns: .sum(\"amount\", ...) or .agg(F.sum(\"amount\"))"]


def test_every_load_of_the_project_logs_the_warnings_before_spark_starts(tmp_path, caplog):
    """A run and a --dry-run load the project the same way: the warnings reach stderr through logging."""
    from pipelines.engine.project import load_project

    config = write_project(tmp_path, "pipeline: {transformations: ./transformations}\ntables:\n"
                                     "  - {name: w_raw, layer: bronze, source: {type: files, format: json, "
                                     "path: ./landing, options: {mode: PERMISSIVE}}}\n",
                           {"bronze/w_raw.py": "def w_raw(source):\n    source.show()\n    return source\n"})
    (tmp_path / "landing").mkdir()
    with caplog.at_level("WARNING"):
        project = load_project(config)
    [warning] = project.warnings
    assert (warning.file, warning.line, warning.table) == (str(tmp_path / "transformations/bronze/w_raw.py"), 2,
                                                           "w_raw")
    assert [r.getMessage() for r in caplog.records] == [warning.render()]
    caplog.clear()
    assert load_project(config, log_warnings=False).warnings == (warning,) and not caplog.records
