"""The README's "Testing your project" works as written: a fresh folder-mode project made of the
README's own code blocks, tested with plain `python -m pytest` (no conftest, no `pythonpath`), in a
subprocess with this venv's interpreter. A copy of the test with a wrong expectation must fail, so
the check can fail."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(?:python|yaml)\n# (?P<path>[\w./]+)\n(?P<body>.*?)```", re.S)


def readme_files() -> dict[str, str]:
    """The files the testing section shows: each block whose first line names its path."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Testing your project"):text.index("## CLI reference")]
    return {m["path"]: f"# {m['path']}\n{m['body']}" for m in BLOCK.finditer(section)}


def test_the_readme_lists_a_whole_folder_mode_project():
    files = readme_files()
    assert set(files) == {"config.yml", "transformations/bronze/orders_bronze.py",
                          "transformations/silver/orders_silver.py", "tests/test_orders_silver.py"}
    assert "transformations: ./transformations" in files["config.yml"]


def test_the_readme_test_passes_in_a_fresh_folder_mode_project(tmp_path):
    project = tmp_path / "shop"
    for path, body in readme_files().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body, encoding="utf-8")
    test = project / "tests" / "test_orders_silver.py"
    wrong = test.read_text(encoding="utf-8").replace('("O1", 12.5), ("O2", 7.0)', '("O1", 10.0), ("O2", 7.0)')
    assert wrong != test.read_text(encoding="utf-8")
    (project / "tests" / "test_wrong_expectation.py").write_text(wrong, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LDP_CONFIG", "LDP_STATE_DIR")}

    done = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=600)

    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # the wrong expectation fails; nothing errors at collection
    passed = set(re.findall(r"^PASSED (\S+)", out, re.M))
    failed = set(re.findall(r"^FAILED (\S+?)(?: - |$)", out, re.M))
    assert passed == {"tests/test_orders_silver.py::test_the_latest_version_of_each_order_wins",
                      "tests/test_orders_silver.py::test_rows_without_an_amount_are_dropped",
                      "tests/test_wrong_expectation.py::test_rows_without_an_amount_are_dropped"}, out
    assert failed == {"tests/test_wrong_expectation.py::test_the_latest_version_of_each_order_wins"}, out
    assert "DataFramesNotEqualError" in out and not (project / ".ldp").exists()
