"""The pytest plugin finds a user's project and makes folder-mode transformations importable; the `test`
extra brings what the README's testing section needs. (The README's test itself runs end to end in
tests/integration/test_user_testing.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipelines.testing.plugin import importable, project_config, transformations_folder

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]
FOLDER = ("pipeline: {name: p, schema: s, transformations: ./code/transformations}\n"
          "tables: [{name: t, layer: bronze, source: {type: files, format: json, path: ./in}}]\n")


def test_the_project_is_the_option_else_the_environment_else_the_rootdir(tmp_path, monkeypatch):
    monkeypatch.delenv("LDP_CONFIG", raising=False)
    assert project_config(None, tmp_path) is None
    (tmp_path / "config.yml").write_text(FOLDER)
    assert project_config(None, tmp_path) == tmp_path / "config.yml"
    monkeypatch.setenv("LDP_CONFIG", str(tmp_path / "env.yml"))
    assert project_config(None, tmp_path) == tmp_path / "env.yml"
    assert project_config(str(tmp_path / "option.yml"), tmp_path) == tmp_path / "option.yml"


def test_only_a_folder_mode_project_has_a_folder_to_import_from(tmp_path):
    (tmp_path / "config.yml").write_text(FOLDER)
    assert transformations_folder(tmp_path / "config.yml") == tmp_path / "code" / "transformations"
    (tmp_path / "config.yml").write_text(FOLDER.replace("./code/transformations", "my_project.transformations"))
    assert transformations_folder(tmp_path / "config.yml") is None
    (tmp_path / "config.yml").write_text("pipeline: [")  # broken: the `transformation` fixture says why
    assert transformations_folder(tmp_path / "config.yml") is None


def test_the_folder_parent_is_importable_here_and_on_spark_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    (tmp_path / "transformations" / "silver").mkdir(parents=True)
    (tmp_path / "transformations" / "silver" / "t_plugin_probe.py").write_text("def t_plugin_probe():\n    return 7\n")
    importable(tmp_path)
    importable(tmp_path)  # once only
    assert sys.path.count(str(tmp_path)) == 1
    assert os.environ["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/elsewhere"])
    from transformations.silver.t_plugin_probe import t_plugin_probe  # type: ignore[import-not-found]

    assert t_plugin_probe() == 7


def test_the_test_extra_brings_pytest_and_chispa(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)], cwd=REPO,
                   check=True, capture_output=True)
    requires = next(tmp_path.glob("*.egg-info")).joinpath("requires.txt").read_text()
    sections = {block.split("]")[0]: block for block in requires.split("\n[")[1:]}
    assert "pytest>=8" in sections["test"] and "chispa>=0.10" in sections["test"]
    assert "pytest" not in sections["local"] and "chispa>=0.10" in sections["dev"]


def test_the_transformation_fixture_loads_a_tables_function_and_names_what_is_wrong(pytester, monkeypatch):
    monkeypatch.delenv("LDP_CONFIG", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the inner session puts the project on it
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    pytester.makefile(".yml", config=FOLDER.replace("./code/transformations", "./transformations"))
    (pytester.path / "transformations" / "bronze").mkdir(parents=True)
    (pytester.path / "transformations" / "bronze" / "t.py").write_text("def t(source):\n    return source * 2\n")
    pytester.makepyfile(test_user="""
        from transformations.bronze.t import t

        def test_loaded_and_imported(transformation):
            assert transformation("t")(source=2) == t(2) == 4

        def test_unknown(transformation):
            transformation("nope")

        def test_not_a_cdc_table(cdc_target):
            cdc_target("t", source=2)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*no table 'nope' in *config.yml; tables: t*",
                                 "*table 't' in *config.yml has no cdc: block*"])
