"""The layering is a contract (`.importlinter`), checked with import-linter on every test run, and a
deliberate violation proves the contract would catch one."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipelines"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, statement, contract", [
    ("core/_violation.py", "import pipelines.engine.cli\n", "layering"),
    ("catalog/_violation.py", "from pipelines.quality import enforce\n", "layering"),
    ("ldp/_violation.py", "from pipelines.runners import spark\n", "layering"),
    ("core/_violation.py", "import pyspark.sql\n", "pure core"),
    ("report/_violation.py", "import psycopg\n", "pure report"),
])
def test_a_new_violation_breaks_the_contracts(tmp_path, module, statement, contract):
    copy = tmp_path / "pipelines"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    shutil.copy2(ROOT / ".importlinter", tmp_path / ".importlinter")
    (copy / module).write_text(statement, encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert broken and broken[0].startswith(contract), result.stdout
    assert "pipelines." + module[:-3].replace("/", ".") in result.stdout


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "transformations" not in p.parts and "_bundled" not in p.parts]


def test_only_the_quality_package_imports_dqx_and_only_its_adapter_dqx_internals():
    internals = {"databricks.labs.dqx.manager", "databricks.labs.dqx.schema"}
    for path in _modules():
        dqx = {name for name in _imports(path) if name.startswith("databricks.labs.dqx")}
        if "quality" not in path.parts:
            assert not dqx, f"{path.relative_to(ROOT)} imports {dqx}: go through pipelines.quality"
        elif path.name != "dqx_adapter.py":
            assert not dqx & internals, f"{path.relative_to(ROOT)} imports DQX internals {dqx & internals}"
            text = path.read_text(encoding="utf-8")
            assert "engine._engine" not in text and '__dict__["skip_message"]' not in text, path


def test_production_code_does_not_import_test_doubles():
    for path in _modules():
        assert not {n for n in _imports(path) if n.startswith("unittest")}, path.relative_to(ROOT)


def test_every_package_declares_its_public_surface():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name in ("transformations", "_bundled"):
            continue
        assert "__all__" in init.read_text(encoding="utf-8"), f"{init.relative_to(ROOT)} lacks __all__"
