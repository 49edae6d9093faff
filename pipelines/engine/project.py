"""Load a project: config → plan → transformation functions, reporting every problem at once.

This is what `validate`, `--dry-run` and a run share; nothing here starts Spark.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Config, load_config, with_lines
from .errors import ConfigError, Problem
from .graph import Selection
from .loader import Transformation, load_transformations
from .plan import Mode, Plan, build_plan


@dataclass(frozen=True)
class Project:
    plan: Plan
    functions: dict[str, Transformation]

    @property
    def config(self) -> Config:
        return self.plan.config


def load_project(config_path: str | Path, selection: Selection = Selection(), mode: Mode = "batch",
                 check_all_modules: bool = False) -> Project:
    """Validate the config, graph, selection and modules; raise one ConfigError listing all problems.

    Modules are checked for the selected tables only, unless `check_all_modules` (as `validate` does)
    or the graph itself is broken (then there is no selection to restrict to).
    """
    config = load_config(config_path)
    problems: list[Problem] = []
    plan: Plan | None = None
    try:
        plan = build_plan(config, selection, mode)
    except ConfigError as exc:
        problems.extend(exc.problems)
    tables = config.tables if check_all_modules or plan is None else [t.config for t in plan.tables]
    functions: dict[str, Transformation] = {}
    try:
        functions = load_transformations(config, tables)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        text = Path(config_path).read_text(encoding="utf-8")
        raise ConfigError(with_lines(problems, text))
    assert plan is not None
    return Project(plan=plan, functions=functions)
