"""A table's failure tells its root cause and the user's `file:line`, in the JSON summary and the run
record alike, and loses nothing: one test per bad input, through the CLI on the shared session."""
from __future__ import annotations

import html
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.core.errors import describe_error
from pipelines.engine.cli import cli
from tests.conftest import write_project
from tests.spark.harness import MODULES, add_file, project_config

_schemas = itertools.count()


class Project:
    """A folder-mode project (raw csv -> clean, other -> report) run once successfully."""

    def __init__(self, spark, root: Path):
        self.spark, self.root = spark, root
        self.schema = f"errc{next(_schemas)}"
        add_file(root, "day1.csv", [(1, 10), (2, -5), (3, 7)])
        self.write(MODULES)
        assert self.run()["status"] == "success"

    def write(self, modules: dict[str, str], config: str | None = None) -> None:
        write_project(self.root, config or project_config(self.schema), modules)

    def run(self, *args: str) -> dict:
        result = CliRunner().invoke(cli, ["--config", str(self.root / "config.yml"), "--format", "json",
                                          "--state-dir", str(self.root / ".ldp"), *args])
        assert result.exit_code in (0, 3), result.stderr
        return json.loads(result.stdout)

    def failure(self, table: str, *args: str) -> tuple[str, str]:
        """Run (a selection), expect `table` to fail: its error in the summary and in the run record."""
        summary = self.run(*args)
        latest = json.loads((self.root / ".ldp" / "runs" / "latest.json").read_text())  # this run's record
        record = json.loads((self.root / ".ldp" / "runs" / f"{latest['run_id']}.json").read_text())
        assert record["summary"]["status"] == summary["status"] and record["selection"] == [args[-1]]
        [failed] = [t for t in summary["tables"] if t["name"] == table]
        [recorded] = [t for t in record["summary"]["tables"] if t["name"] == table]
        assert summary["status"] == "failed" and failed["status"] == "failed"
        assert html.escape(failed["error"]) in Path(summary["report"]).read_text()  # the report too
        return failed["error"], recorded["error"]

    def rows(self, table: str) -> list:
        return sorted(self.spark.table(f"{self.schema}.{table}").collect())

    def module(self, relative: str) -> Path:
        return self.root / "transformations" / relative


@pytest.fixture
def project(spark, tmp_path):
    return Project(spark, tmp_path)


def test_a_column_typo_names_spark_condition_and_the_users_line(project):
    before = project.rows("clean")
    project.write(dict(MODULES, **{"silver/clean.py": "def clean(raw):\n    return raw.select('custmer_id')\n"}))
    summary_error, record_error = project.failure("clean", "--select", "clean")
    assert summary_error == record_error == (
        "AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter "
        "with name `custmer_id` cannot be resolved. Did you mean one of the following? [`amount`, `id`]. "
        "SQLSTATE: 42703 [org.apache.spark.sql.catalyst.ExtendedAnalysisException] "
        f"(at {project.module('silver/clean.py')}:2)")
    assert project.rows("clean") == before


def test_an_exception_raised_in_the_transformation_names_its_line(project):
    before = project.rows("clean")
    project.write(dict(MODULES, **{"silver/clean.py": "def clean(raw):\n    if raw is not None:\n"
                                                      "        raise ValueError('bad input')\n    return raw\n"}))
    summary_error, record_error = project.failure("clean", "--select", "clean")
    assert summary_error == record_error == f"ValueError: bad input (at {project.module('silver/clean.py')}:3)"
    assert project.rows("clean") == before


def test_a_cast_failing_at_the_write_names_the_condition_and_the_line_that_built_it(project, spark):
    before = project.rows("clean")
    project.write(dict(MODULES, **{"silver/clean.py": (
        "from pyspark.sql import functions as F\n\n"
        "def clean(raw):\n"
        "    return raw.withColumn('amount', F.concat(F.col('id'), F.lit('x')).cast('int'))\n")}))
    ansi = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        summary_error, record_error = project.failure("clean", "--select", "clean")
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi)
    assert summary_error == record_error
    assert summary_error.startswith(
        "NumberFormatException: [CAST_INVALID_INPUT] The value '1x' of the type \"STRING\" cannot be cast "
        "to \"INT\" because it is malformed.")
    assert summary_error.endswith(
        f"SQLSTATE: 22018 [org.apache.spark.SparkNumberFormatException] (at {project.module('silver/clean.py')}:4)")
    assert "jdk.internal.reflect" not in summary_error
    assert project.rows("clean") == before


def test_a_stream_failing_on_a_cast_names_the_condition_once_and_the_line(project, spark):
    assert project.run("--mode", "streaming", "--select", "raw")["status"] == "success"  # its checkpoint
    before = project.rows("raw")
    add_file(project.root, "day2.csv", [(4, 1)])
    project.write(dict(MODULES, **{"bronze/raw.py": (
        "from pyspark.sql import functions as F\n\n"
        "def raw(source):\n"
        "    return source.withColumn('amount', F.concat(F.col('id'), F.lit('x')).cast('int'))\n")}))
    summary_error, record_error = project.failure("raw", "--mode", "streaming", "--select", "raw")
    assert summary_error == record_error
    # the micro-batch's own error (streams write each batch through foreachBatch), not its wrapping
    assert summary_error.startswith("NumberFormatException: [CAST_INVALID_INPUT] The value '4x' ")
    assert "Python Proxy" not in summary_error and "Traceback" not in summary_error
    assert summary_error.endswith(f"(at {project.module('bronze/raw.py')}:4)")
    assert summary_error.count("CAST_INVALID_INPUT") == 1
    assert project.rows("raw") == before


def test_a_reader_option_only_spark_rejects_tells_sparks_reason(project):
    before = project.rows("raw")
    project.write(MODULES, project_config(project.schema).replace("header: true", "header: true, encoding: nope"))
    summary_error, record_error = project.failure("raw", "--select", "raw")
    assert summary_error == record_error == (
        "IllegalArgumentException: [INVALID_PARAMETER_VALUE.CHARSET] The value of parameter(s) `charset` in "
        "`CSVOptions` is invalid: expects one of the iso-8859-1, us-ascii, utf-16, utf-16be, utf-16le, utf-32, "
        "utf-8, but got nope. SQLSTATE: 22023 [org.apache.spark.SparkIllegalArgumentException]")
    assert project.rows("raw") == before


def test_a_py4j_error_gives_the_java_reason_on_its_second_line_not_the_call(spark, tmp_path):
    """`header: yes` (caught by `validate` since; here read directly) fails in Py4J, whose first line
    only names the JVM call."""
    (tmp_path / "a.csv").write_text("id\n1\n")
    with pytest.raises(Exception) as raised:
        spark.read.format("csv").option("header", "yes").load(str(tmp_path / "a.csv"))
    assert str(raised.value).startswith("An error occurred while calling o")
    assert describe_error(raised.value) == "org.apache.spark.SparkException: header flag can be true or false."


def test_end_to_end_a_fresh_cli_process_names_the_line_and_prints_the_full_trace_with_verbose(tmp_path):
    """The one subprocess: a fresh process whose tables run in worker threads (where PySpark records no
    call site unless the runner makes the session active there), and --verbose prints the Python and
    JVM traces."""
    add_file(tmp_path, "day1.csv", [(1, 10), (2, -5), (3, 7)])
    write_project(tmp_path, project_config("errc_e2e"), dict(MODULES, **{"silver/clean.py": (
        "from pyspark.sql import functions as F\n\n\n"
        "def clean(raw):\n"
        "    return raw.withColumn('amount', F.concat(F.col('id'), F.lit('x')).cast('int'))\n")}))
    command = [str(Path(sys.executable).with_name("ldp_engine")), "--format", "json", "--verbose"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert proc.returncode == 3, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    record = json.loads((tmp_path / ".ldp" / "runs" / "latest.json").read_text())
    tables = {t["name"]: t for t in summary["tables"]}
    expected_end = ("SQLSTATE: 22018 [org.apache.spark.SparkNumberFormatException] "
                    f"(at {tmp_path / 'transformations' / 'silver' / 'clean.py'}:5)")
    assert tables["clean"]["error"].startswith("NumberFormatException: [CAST_INVALID_INPUT] The value '1x'")
    assert tables["clean"]["error"].endswith(expected_end)
    assert record["summary"]["tables"] == summary["tables"]
    assert (tables["raw"]["status"], tables["other"]["status"], tables["report"]["status"]) == (
        "success", "success", "skipped")
    assert "Traceback (most recent call last)" in proc.stderr and "JVM stack trace:" in proc.stderr
    assert "at org.apache.spark.sql.errors.QueryExecutionErrors" in proc.stderr  # the JVM frames, in full
