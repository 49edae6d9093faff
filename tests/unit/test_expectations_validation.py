"""Invalid DQX checks exit 1 before Spark starts, naming table, check and problem."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines.engine.cli import cli
from pipelines.core.errors import ConfigError
from pipelines.engine.project import load_project
from tests.conftest import write_project

MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n"}


def config_with(checks: str, extra: str = "") -> str:
    return ("pipeline: {transformations: ./transformations}\ntables:\n"
            "  - name: raw\n    layer: bronze\n    source: {type: files, format: csv, path: ./in}\n"
            f"{extra}    expectations:\n{checks}")


@pytest.mark.parametrize("check, expected", [
    ("      - {name: c1, check: {function: no_such_check, arguments: {column: a}}}\n",
     ["check #1 'c1'", "function 'no_such_check' is not defined"]),
    ("      - {criticality: fatal, check: {function: is_not_null, arguments: {column: a}}}\n",
     ["check #1 (is_not_null)", "Invalid 'criticality' value: 'fatal'"]),
    ("      - {check: {function: is_not_null, arguments: {col: a}}}\n",
     ["Unexpected argument 'col'", "Missing required argument 'column'"]),
])
def test_invalid_checks_are_reported_per_table_and_check(tmp_path, check, expected):
    path = write_project(tmp_path, config_with(check), MODULES)
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    message = caught.value.render()
    assert "table 'raw'" in message and "key 'expectations'" in message
    for part in expected:
        assert part in message
    assert "{'" not in message  # DQX's dump of the check dict is trimmed


def test_valid_checks_and_expectations_file(tmp_path):
    (tmp_path / "checks.yml").write_text(
        "- {name: a_not_null, criticality: warn, check: {function: is_not_null, arguments: {column: a}}}\n")
    path = write_project(tmp_path, config_with(
        "      - {check: {function: is_not_null, arguments: {column: a}}}\n",
        extra="    expectations_file: ./checks.yml\n"), MODULES)
    (tmp_path / "in").mkdir()  # the landing folder (a missing one is a problem of its own)
    assert load_project(path).plan.order == ("raw",)


def test_missing_expectations_file_and_cli_exit_code(tmp_path):
    path = write_project(tmp_path, config_with(
        "      - {check: {function: is_not_null, arguments: {column: a}}}\n",
        extra="    expectations_file: ./nope.yml\n"), MODULES)
    result = CliRunner().invoke(cli, ["validate", "--config", str(path)])
    assert result.exit_code == 1
    assert "expectations file not found" in result.stderr and "nope.yml" in result.stderr


def test_on_error_must_be_a_known_mode(tmp_path):
    path = write_project(tmp_path, config_with(
        "      - {check: {function: is_not_null, arguments: {column: a}}}\n",
        extra="    on_error: ignore\n"), MODULES)
    with pytest.raises(ConfigError, match="key 'on_error'.*'quarantine', 'drop' or 'fail'"):
        load_project(path)
