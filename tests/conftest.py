"""Shared helpers: a throw-away copy of the example project for tests that write or edit files."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of config.yml, data/ and expectations/ in a temp folder (transformations: the package)."""
    shutil.copy2(REPO / "config.yml", tmp_path / "config.yml")
    for folder in ("data", "expectations"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def write_project(root: Path, config: str, modules: dict[str, str]) -> Path:
    """Write a config.yml plus transformation modules {"silver/x.py": source} under root/transformations."""
    (root / "config.yml").write_text(config)
    for relative, source in modules.items():
        path = root / "transformations" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "config.yml"
