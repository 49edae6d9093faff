"""Property-based fuzzing of config files: whatever the YAML (random structures, or a valid config
with keys dropped, renamed or retyped, values swapped between tables, cycles, unicode, huge and empty
values), `validate` and `run --dry-run` exit 0 or 1, never with a traceback, and every error names
the config file. Hypothesis prints the failing document and a `@reproduce_failure` blob."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.engine.cli import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((REPO / "config.yml").read_text(encoding="utf-8"))
FUZZ = settings(max_examples=150, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20) | st.sampled_from(["", "bronze", "silver", "gold", "daily", "files", "é🚀"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
keys = st.sampled_from(["name", "layer", "tags", "depends_on", "source", "expectations", "on_error",
                        "partition_cols", "table_properties", "format", "comment", "expectations_file"])
huge = st.sampled_from(["x" * 20_000, "ü" * 5_000, "a" * 300])
paths = st.sampled_from([".", "..", "./expectations", "/", "\x00", "x" * 5_000, "./nope.yml", "/dev/null",
                         "~", "./config.yml", "ü/ö.yml"])


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict:
    """The example config with a few mutations applied."""
    config = copy.deepcopy(EXAMPLE)
    tables = config["tables"]
    for _ in range(draw(st.integers(1, 4))):
        table = tables[draw(st.integers(0, len(tables) - 1))]
        action = draw(st.sampled_from(["drop", "rename", "retype", "swap", "cycle", "unicode", "huge",
                                       "empty", "path", "pipeline"]))
        key = draw(keys)
        if action == "drop":
            table.pop(key, None)
        elif action == "rename" and key in table:
            table[draw(st.text(min_size=1, max_size=12))] = table.pop(key)
        elif action == "retype":
            table[key] = draw(values)
        elif action == "swap":
            other = tables[draw(st.integers(0, len(tables) - 1))]
            table[key], other[key] = other.get(key), table.get(key)
        elif action == "cycle":
            upstream = tables[draw(st.integers(0, len(tables) - 1))]
            upstream["depends_on"] = [*(upstream.get("depends_on") or []), table.get("name")]
            table["depends_on"] = [*(table.get("depends_on") or []), upstream.get("name")]
        elif action == "unicode":
            table["name"] = draw(st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=8))
        elif action == "huge":
            table[key] = draw(huge)
        elif action == "empty":
            table[key] = draw(st.sampled_from([None, "", [], {}]))
        elif action == "path":  # files the engine reads: checks, transformation modules
            if draw(st.booleans()):
                table["expectations_file"] = draw(paths)
            else:
                config["pipeline"] = {**EXAMPLE["pipeline"], "transformations": draw(paths)}
        else:
            config["pipeline"] = draw(values)
    return config


def check_exit(config_file: Path) -> None:
    runner = CliRunner()
    for command in (["validate"], ["run", "--dry-run"]):
        result = runner.invoke(cli, [*command, "--config", str(config_file), "--format", "json"],
                               catch_exceptions=False)
        assert result.exit_code in (0, 1), (command, result.output)
        assert "Traceback" not in result.output
        output = json.loads(result.stdout)
        if result.exit_code == 1:
            assert output["errors"], output
            for error in output["errors"]:  # each names the file at fault: config.yml or one it names
                assert error.startswith("/"), error


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example's checks file and landing data, so that unmutated parts of a config stay valid."""
    folder = tmp_path_factory.mktemp("fuzz")
    for name in ("expectations", "data"):
        shutil.copytree(REPO / name, folder / name)
    return folder


def test_the_unmutated_example_is_valid_in_the_fuzz_folder(fuzz_dir):
    """The mutations start from a config that passes, so every failure they find is theirs."""
    path = fuzz_dir / "config.yml"
    path.write_text(yaml.safe_dump(EXAMPLE, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--config", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output


@FUZZ
@given(document=values)
def test_random_yaml_structures_exit_0_or_1_naming_the_file(fuzz_dir, document):
    path = fuzz_dir / "config.yml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    check_exit(path)


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_exits_0_or_1_naming_the_file(fuzz_dir, text):
    path = fuzz_dir / "config.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_exit(path)


@FUZZ
@given(config=mutated_configs())
def test_mutated_valid_configs_exit_0_or_1_naming_the_file(fuzz_dir, config):
    path = fuzz_dir / "config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    check_exit(path)
