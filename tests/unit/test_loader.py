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


UDF_MODULE = '''import pandas as pd
from pyspark.sql import functions as F


@F.udf("string")
def upper(value):
    return value.upper()


@F.pandas_udf("a int, b decimal(10, 2)")
def pair(s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"a": s, "b": s})


twice = F.udf(lambda x: x * 2, "array<map<string,bigint>>")


def clean(raw):
    return raw.withColumn("u", upper("name"))
'''
FRESH_INTERPRETER = '''import pickle, sys
from pyspark import SparkContext, cloudpickle
from pipelines.engine.project import load_project
project = load_project(sys.argv[1], check_all_modules=True)
module = sys.modules[project.functions["clean"].__module__]
assert SparkContext._active_spark_context is None
print(module.upper.returnType, module.pair.returnType.simpleString(), module.twice.returnType.simpleString())
shipped = cloudpickle.dumps(module.upper.func)
del sys.modules[module.__name__]  # as on a Python worker: the synthetic module does not exist there
print(pickle.loads(shipped)("worker"))
'''


def test_module_level_udfs_with_ddl_types_import_without_a_session_and_ship_by_value(tmp_path):
    """`@F.udf("string")` at module level needed a Spark session at import (SESSION_OR_CONTEXT_NOT_EXISTS),
    and a folder module's UDF was pickled by its synthetic module name, unknown to the workers."""
    import subprocess
    import sys

    path = write_project(tmp_path, CONFIG, {"bronze/raw.py": "def raw(source):\n    return source\n",
                                            "silver/clean.py": UDF_MODULE})
    (tmp_path / "in").mkdir()
    proc = subprocess.run([sys.executable, "-c", FRESH_INTERPRETER, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["StringType() struct<a:int,b:decimal(10,2)> array<map<string,bigint>>",
                                        "WORKER"]


def test_a_sink_module_that_cannot_be_imported_is_called_a_sink_module(tmp_path):
    from pipelines.core.loader import load_sink_functions

    config_text = CONFIG.replace("depends_on: [raw]}", "depends_on: [raw], sinks: [{type: python, module: crm}]}")
    path = write_project(tmp_path, config_text, {"bronze/raw.py": "def raw(source): pass\n",
                                                 "silver/clean.py": "def clean(raw): pass\n",
                                                 "sinks/crm.py": "def write(batch_df, batch_id:\n"})
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        load_sink_functions(config, config.tables)
    message = caught.value.render()
    assert "table 'clean'" in message and "cannot import sink module" in message and "sinks/crm.py" in message \
        and "SyntaxError" in message
