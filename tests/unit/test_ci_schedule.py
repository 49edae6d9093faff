"""The CI schedule's slowest-first list names tests that exist: a renamed or deleted test would silently
drop out of the order and could again end last on one worker."""
from __future__ import annotations

import ast

from tests.conftest import REPO, SLOWEST_FIRST


def test_every_slowest_first_id_is_a_test_function_of_its_file():
    missing = []
    for node_id in SLOWEST_FIRST:
        path, name = node_id.split("::")
        tree = ast.parse((REPO / path).read_text()) if (REPO / path).is_file() else ast.Module(body=[])
        if name not in {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}:
            missing.append(node_id)
    assert not missing, missing
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)
