"""Landing data checked before Spark starts: missing local folders and bad reader options, located."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.core.config import parse_config
from pipelines.core.source_checks import option_problems, source_problems
from pipelines.engine.cli import cli
from tests.conftest import write_project

CONFIG = """\
pipeline: {{transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source:
      type: files
      format: csv
      path: ./landing
      options: {{{options}}}
"""
MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n"}


def project(root: Path, options: str = "header: true", landing: bool = True) -> Path:
    config = write_project(root, CONFIG.format(options=options), MODULES)
    if landing:
        (root / "landing").mkdir()
        (root / "landing" / "a.csv").write_text("id\n1\n")
    return config


def validate(config: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", "--config", str(config), "--format", "json"],
                                catch_exceptions=False)
    out = json.loads(result.stdout)
    return result.exit_code, out.get("errors", out.get("problems", []))


def test_a_valid_source_passes(tmp_path):
    code, errors = validate(project(tmp_path, "header: true, inferSchema: 'true', sep: ';', mode: FAILFAST"))
    assert (code, errors) == (0, [])


def test_header_yes_is_located_with_file_line_table_key_and_value(tmp_path):
    config = project(tmp_path, "header: yes")
    code, errors = validate(config)
    assert code == 1
    assert errors == [f"{config}:9, table 'raw', key 'source.options.header': csv reader option 'header' "
                      "must be true or false (got 'yes')"]


def test_a_misspelt_option_names_the_nearest_one(tmp_path):
    code, errors = validate(project(tmp_path, "headers: true"))
    assert code == 1 and len(errors) == 1
    assert "unknown csv reader option 'headers'" in errors[0] and "did you mean 'header'?" in errors[0]


def test_a_missing_landing_folder_is_found_before_spark(tmp_path):
    config = project(tmp_path, landing=False)
    code, errors = validate(config)
    assert code == 1
    assert errors == [f"{config}:8, table 'raw', key 'source.path': the source path does not exist: "
                      f"{tmp_path / 'landing'} (got './landing'); paths are relative to config.yml's folder"]


def test_the_run_refuses_a_missing_folder_with_exit_1_before_spark(tmp_path):
    config = project(tmp_path, landing=False)
    result = CliRunner().invoke(cli, ["--config", str(config), "--dry-run", "--format", "json"])
    assert result.exit_code == 1 and "the source path does not exist" in result.output


@pytest.mark.parametrize("fmt, options, expected", [
    ("csv", {"maxColumns": "many"}, "must be an integer"),
    ("csv", {"quote": "''"}, "must be a single character"),
    ("csv", {"mode": "lenient"}, "must be one of PERMISSIVE, DROPMALFORMED, FAILFAST"),
    ("json", {"multiline": "yes"}, "must be true or false"),
    ("json", {"samplingRatio": 2}, "must be a number in (0, 1]"),
    ("parquet", {"header": True}, "unknown parquet reader option 'header'"),
])
def test_option_values_spark_would_refuse(tmp_path, fmt, options, expected):
    config = parse_config(f"tables:\n  - {{name: raw, layer: bronze, source: {{type: files, format: {fmt}, "
                          f"path: ./x, options: {json.dumps(options)}}}}}\n", tmp_path / "config.yml")
    [problem] = option_problems("raw", config.tables[0].source)
    assert expected in problem.render()


def test_names_compare_case_insensitively_and_auto_loader_options_pass(tmp_path):
    config = parse_config("tables:\n  - {name: raw, layer: bronze, source: {type: files, format: json, "
                          "path: ./x, options: {MULTILINE: true, cloudFiles.schemaHints: 'a INT'}}}\n",
                          tmp_path / "config.yml")
    assert option_problems("raw", config.tables[0].source) == []


def test_uris_and_absolute_paths_are_left_to_the_runtime(tmp_path):
    config = parse_config("tables:\n  - {name: a, layer: bronze, source: {type: files, format: csv, "
                          "path: /Volumes/main/raw/x}}\n  - {name: b, layer: bronze, source: {type: files, "
                          "format: csv, path: 's3://bucket/x'}}\n", tmp_path / "config.yml")
    assert source_problems(config, config.tables) == []
