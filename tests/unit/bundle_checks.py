"""Offline checks of a Databricks Asset Bundle: what `databricks bundle validate` would reject, and the
rules of this project's DataOps flow that no schema states. Each returns a list of problems."""
from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parent / "schemas" / "databricks-bundle-schema.json"
TARGETS = {"sandbox": "development", "staging": "production", "prod": "production"}


@functools.lru_cache(maxsize=1)
def validator() -> jsonschema.Draft202012Validator:
    """The CLI's published bundle schema; its Unicode classes rewritten for Python's `re`."""
    text = SCHEMA.read_text(encoding="utf-8")
    for before, after in ((r"[\\p{L}\\p{N}]", r"[^\\W_]"), (r"\\p{L}", r"[^\\W\\d_]"), (r"\\p{N}", r"\\d")):
        text = text.replace(before, after)
    return jsonschema.Draft202012Validator(json.loads(text))


def load(root: Path) -> dict[Path, dict[str, Any]]:
    """databricks.yml and every file its `include` globs match, by path."""
    main = yaml.safe_load((root / "databricks.yml").read_text(encoding="utf-8"))
    files = {root / "databricks.yml": main}
    for pattern in main.get("include", []):
        files.update({p: yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in sorted(root.glob(pattern))})
    return files


def combined(root: Path) -> dict[str, Any]:
    """One document, as the CLI sees the bundle before a target is chosen."""
    merged: dict[str, Any] = {}
    for doc in load(root).values():
        _merge(merged, doc)
    return merged


def for_target(root: Path, target: str) -> dict[str, Any]:
    """The bundle as deployed to `target`: the target's settings over the root's, variables resolved to
    the target's values (defaults otherwise)."""
    bundle = combined(root)
    settings = copy.deepcopy(bundle.get("targets", {}).get(target, {}))
    resolved = {name: spec.get("default") for name, spec in bundle.get("variables", {}).items()}
    resolved.update(settings.pop("variables", {}) or {})
    bundle.pop("targets", None)
    _merge(bundle, settings)
    bundle["variables"] = {name: {"default": value} for name, value in resolved.items()}
    return bundle


def schema_problems(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def flow_problems(root: Path) -> list[str]:
    """This project's DataOps rules: exactly sandbox/staging/prod, one default (sandbox), their modes,
    a service principal running staging and prod, a per-user and per-branch sandbox root."""
    targets = combined(root).get("targets", {})
    problems = []
    if set(targets) != set(TARGETS):
        problems.append(f"targets are {sorted(targets)}, expected {sorted(TARGETS)}")
    defaults = [name for name, spec in targets.items() if (spec or {}).get("default")]
    if defaults != ["sandbox"]:
        problems.append(f"default target(s) {defaults}, expected exactly ['sandbox']")
    for name, mode in TARGETS.items():
        spec = targets.get(name) or {}
        if spec.get("mode") != mode:
            problems.append(f"target {name}: mode {spec.get('mode')!r}, expected {mode!r}")
        if name != "sandbox" and "${var.sp_id}" not in json.dumps(spec.get("run_as", {})):
            problems.append(f"target {name}: run_as must be the service principal ${{var.sp_id}}")
    root_path = ((targets.get("sandbox") or {}).get("workspace") or {}).get("root_path", "")
    if not all(part in root_path for part in ("${workspace.current_user.", "${bundle.git_branch}")):
        problems.append(f"target sandbox: root_path {root_path!r} is not unique per user and branch")
    return problems


def reference_problems(root: Path) -> list[str]:
    """Every `${var.x}` declared, every `${resources.kind.name...}` defined, every include matching."""
    files = load(root)
    bundle = combined(root)
    declared = set(bundle.get("variables", {}))
    defined = {(kind, name) for kind, items in bundle.get("resources", {}).items() for name in items or {}}
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        problems += [f"{path.name}: ${{var.{v}}} is not declared" for v in
                     sorted(set(re.findall(r"\$\{var\.(\w+)\}", text)) - declared)]
        problems += [f"{path.name}: ${{resources.{k}.{n}}} does not exist" for k, n in
                     sorted(set(re.findall(r"\$\{resources\.(\w+)\.(\w+)", text)) - defined)]
    main = files[root / "databricks.yml"]
    problems += [f"include {pattern!r} matches no file" for pattern in main.get("include", [])
                 if not list(root.glob(pattern))]
    for path, doc in files.items():  # a file a resource deploys, relative to the file declaring it
        for kind, items in (doc.get("resources") or {}).items():
            problems += [f"{path.name}: {kind}.{name}.file_path {spec['file_path']!r} does not exist"
                         for name, spec in (items or {}).items()
                         if "file_path" in spec and not (path.parent / spec["file_path"]).is_file()]
    return problems


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
