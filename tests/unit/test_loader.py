"""Transformation modules: found by layer/name, signatures checked against depends_on/source/spark."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import load_config
from pipelines.core.errors import ConfigError
from pipelines.core.loader import call_transformation, load_transformations
from pipelines.engine.project import load_project
from tests.conftest import write_project

CONFIG = """
pipeline: {transformations: ./transformations}
tables:
  - {name: raw, layer: bronze, source: {type: files, format: csv, path: ./in}}
  - {name: clean, layer: silver, depends_on: [raw]}
"""


def test_folder_modules_load_and_receive_inputs_by_name(tmp_path):
    path = write_project(tmp_path, CONFIG, {
        "bronze/raw.py": "def raw(source):\n    return ('raw', source)\n",
        "silver/clean.py": "def clean(raw, spark=None):\n    return ('clean', raw, spark)\n"})
    config = load_config(path)
    functions = load_transformations(config, config.tables)
    assert call_transformation(functions["raw"], {"source": 1}, spark="S") == ("raw", 1)
    assert call_transformation(functions["clean"], {"raw": 2}, spark="S") == ("clean", 2, "S")


def test_packaged_example_modules_load():
    project = load_project(Path(__file__).resolve().parents[2] / "config.yml", check_all_modules=True)
    assert set(project.functions) == {t.name for t in project.config.tables}


@pytest.mark.parametrize("modules, expected", [
    ({"bronze/raw.py": "def raw(source): pass\n"},
     ["table 'clean'", "transformation module not found", "silver/clean.py", "def clean(raw)"]),
    ({"bronze/raw.py": "def raw(source): pass\n", "silver/clean.py": "def cleaned(raw): pass\n"},
     ["table 'clean'", "does not define a function named 'clean'"]),
    ({"bronze/raw.py": "def raw(source): pass\n", "silver/clean.py": "def clean(raw, orders): pass\n"},
     ["table 'clean'", "parameter 'orders' cannot be filled: it is not in depends_on",
      "expected `def clean(raw)`"]),
    ({"bronze/raw.py": "def raw(): pass\n", "silver/clean.py": "def clean(raw): pass\n"},
     ["table 'raw'", "function has no parameter 'source' for its source"]),
    ({"bronze/raw.py": "def raw(source): pass\n", "silver/clean.py": "def clean(): pass\n"},
     ["table 'clean'", "no parameter 'raw' for its depends_on"]),
    ({"bronze/raw.py": "def raw(source): pass\n", "silver/clean.py": "def clean(raw:\n"},
     ["table 'clean'", "cannot import transformation module", "SyntaxError"]),
])
def test_module_problems_name_table_and_fix(tmp_path, modules, expected):
    path = write_project(tmp_path, CONFIG, modules)
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        load_transformations(config, config.tables)
    message = caught.value.render()
    for part in expected:
        assert part in message


def test_graph_and_module_problems_are_reported_together(tmp_path):
    path = write_project(tmp_path, CONFIG.replace("depends_on: [raw]", "depends_on: [raw, ghost]"),
                         {"bronze/raw.py": "def raw(source): pass\n"})
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    rendered = [p.render() for p in caught.value.problems]
    assert any("'ghost'" in m for m in rendered)
    assert any("module not found" in m for m in rendered)
    assert all(str(path) in m for m in rendered)
