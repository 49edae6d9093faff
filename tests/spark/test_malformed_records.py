"""The `malformed_record` check on a raw csv/json source, below the runners: every query the runners
make of a checked frame (counting its failures included) works although Spark refuses a query of raw
files that reads only `_corrupt_record`; and the check is declared where it applies, only there."""
from __future__ import annotations

from pathlib import Path

from pipelines.catalog.sources import read_source
from pipelines.core.config import load_config
from pipelines.core.source_checks import checks_malformed_records, source_warnings
from pipelines.quality.checks import named_checks
from pipelines.quality.enforce import Expectations

CONFIG = """\
pipeline: {name: p, schema: s, transformations: ./transformations}
tables:
  - name: events
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT, name STRING", options: {header: true}}
    expectations:
      - {name: always, criticality: warn, check: {function: sql_expression, arguments: {expression: "1 = 1"}}}
  - name: loose
    layer: bronze
    source: {type: files, format: json, path: ./in}
  - name: chosen
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT", options: {header: true, mode: FAILFAST}}
    expectations:
      - {name: always, check: {function: sql_expression, arguments: {expression: "1 = 1"}}}
"""


def config(tmp_path: Path):
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,name\n1,a\nx,b\n3\n")
    return load_config(tmp_path / "config.yml")


def test_counting_the_failures_of_a_raw_source_works_and_finds_each_malformed_line(spark, tmp_path):
    loaded = config(tmp_path)
    table = loaded.by_name["events"]
    source = read_source(spark, table.source, loaded.base_dir, streaming=False, corrupt_record=True)
    checked = Expectations(spark, loaded).apply(table, source)
    assert checked is not None and "_corrupt_record" not in checked.df.columns
    # only the malformed check reads a source column: without care Spark refuses this query
    # (UNSUPPORTED_FEATURE.QUERY_ONLY_CORRUPT_RECORD_COLUMN)
    counts = checked.df.agg(*checked.metrics()).first().asDict()
    assert checked.stats(counts).checks[-1].name == "malformed_record"
    assert (counts["dq_error_rows"], checked.stats(counts).checks[-1].failed) == (2, 2)
    assert checked.df.where(checked.has_errors).count() == 2
    # the native expectation (Databricks event-log metrics) holds exactly for the well-formed row
    [native] = [sql for level in Expectations(spark, loaded).native(table).values()
                for name, sql in level.items() if name == "malformed_record"]
    assert checked.df.where(native).count() == 1


def test_the_check_is_declared_only_for_a_schema_without_an_explicit_mode(tmp_path):
    loaded = config(tmp_path)
    assert [checks_malformed_records(t) for t in loaded.tables] == [True, False, False]
    assert named_checks(loaded, loaded.by_name["events"])[-1] == ("malformed_record", "error")
    assert [c for c, _ in named_checks(loaded, loaded.by_name["chosen"])] == ["always"]


def test_validate_warns_about_csv_and_json_sources_without_a_schema(tmp_path):
    loaded = config(tmp_path)
    [warning] = source_warnings(loaded, loaded.tables)
    assert (warning.table, warning.key, warning.file) == ("loose", "source.schema", str(loaded.path))
    assert "malformed json records cannot be told apart without a declared schema" in warning.render()
