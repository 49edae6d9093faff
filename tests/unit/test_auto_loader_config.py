"""Auto Loader's controls on a `files` source: each rule Auto Loader enforces is a located config error
before Spark starts, and each control becomes Auto Loader's own option on Databricks (a stream through
`cloudFiles`) or the local reader's nearest one."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.catalog.sources import applies_hints_itself, file_read_options
from pipelines.core.config import parse_config
from pipelines.core.errors import ConfigError

from tests.conftest import write_project

from .test_source_checks import MODULES, validate

BASE = "{type: files, format: json, path: ./landing"


def config_text(extra: str, fmt: str = "json") -> str:
    return ("pipeline: {transformations: ./transformations}\ntables:\n"
            f"  - {{name: raw, layer: bronze, source: {BASE.replace('json', fmt)}, {extra}}}}}\n")


def source(extra: str):
    return parse_config(config_text(extra), Path("config.yml")).tables[0].source


@pytest.mark.parametrize("extra, key, expected", [
    ("schema_hints: 'amount DOUBL'", "source.schema_hints", "column amount: "),
    ("schema_hints: 'amount'", "source.schema_hints", "must list columns with their types"),
    ("schema: 'a INT', schema_hints: 'a BIGINT'", "source", "schema_hints refine an inferred schema"),
    ("schema: 'a INT', schema_evolution: addNewColumns", "source", "Auto Loader refuses it with a declared"),
    ("schema_evolution: addColumns", "source.schema_evolution", "addNewColumns"),
    ("rescued_data_column: 'bad name'", "source.rescued_data_column", "must be a column name"),
    ("rescued_data_column: _r, options: {mode: FAILFAST}", "source", "drop the options mode"),
])
def test_each_auto_loader_rule_is_a_located_config_error(tmp_path, extra, key, expected):
    config = write_project(tmp_path, config_text(extra), MODULES)
    (tmp_path / "landing").mkdir()
    code, errors = validate(config)
    assert code == 1 and len(errors) == 1, errors
    assert f"table 'raw', key '{key}'" in errors[0] and expected in errors[0], errors


def test_rescued_data_needs_a_format_that_has_it():
    with pytest.raises(ConfigError, match="rescued_data_column needs a format whose values can be rescued"):
        parse_config(config_text("rescued_data_column: _r", fmt="text"), Path("config.yml"))


def test_on_databricks_a_stream_gets_auto_loaders_options_and_a_batch_only_the_rescued_column():
    spec = source("schema_hints: 'amount DOUBLE', schema_evolution: rescue, rescued_data_column: _rescued")
    assert file_read_options(spec, cloud=True, on_databricks=True) == ({
        "cloudFiles.schemaHints": "amount DOUBLE", "cloudFiles.schemaEvolutionMode": "rescue",
        "rescuedDataColumn": "_rescued"}, None)
    assert file_read_options(spec, cloud=False, on_databricks=True) == ({"rescuedDataColumn": "_rescued"}, None)
    assert not applies_hints_itself(spec, streaming=True, auto_loader=True)  # Auto Loader applies them
    assert applies_hints_itself(spec, streaming=False, auto_loader=True)  # a batch read: Spark does
    assert applies_hints_itself(spec, streaming=True, auto_loader=False)  # a local stream: Spark does


def test_locally_the_rescued_column_holds_the_malformed_record_and_joins_a_declared_schema():
    spec = source("schema: 'id INT', rescued_data_column: _rescued")
    assert file_read_options(spec, cloud=False, on_databricks=False) == (
        {"columnNameOfCorruptRecord": "_rescued"}, "id INT, _rescued STRING")
    assert not spec.flags_malformed_records  # the user chose to keep them: no malformed_record check
    hinted = file_read_options(source("schema_hints: 'id INT', rescued_data_column: _r"), cloud=False,
                               on_databricks=False, schema="`id` INT, `v` STRING")
    assert hinted == ({"columnNameOfCorruptRecord": "_r"}, "`id` INT, `v` STRING, _r STRING")
