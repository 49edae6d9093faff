"""Load a project: config → plan → transformation functions, reporting every problem at once.

This is what `validate`, `--dry-run` and a run share; nothing here starts Spark.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from pipelines.core.config import Config, PipelineSettings, load_config, with_lines
from pipelines.core.errors import ConfigError, Problem, UsageError
from pipelines.core.graph import Selection
from pipelines.quality.checks import validate_expectations

from pipelines.core.loader import Transformation, load_transformations
from pipelines.core.plan import Mode, Plan, build_plan


@dataclass(frozen=True)
class Project:
    plan: Plan
    functions: dict[str, Transformation]

    @property
    def config(self) -> Config:
        return self.plan.config


def load_project(config_path: str | Path, selection: Selection = Selection(), mode: Mode = "batch",
                 check_all_modules: bool = False, catalog: str | None = None,
                 schema: str | None = None) -> Project:
    """Validate the config, graph, selection and modules; raise one ConfigError listing all problems.

    Modules are checked for the selected tables only, unless `check_all_modules` (as `validate` does)
    or the graph itself is broken (then there is no selection to restrict to).
    """
    config = with_target(load_config(config_path), catalog, schema)
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
    problems.extend(validate_expectations(config, tables))
    if problems:
        text = Path(config_path).read_text(encoding="utf-8")
        raise ConfigError(with_lines(problems, text))
    assert plan is not None
    return Project(plan=plan, functions=functions)


def default_config() -> Path:
    """./config.yml if present, else the example config shipped inside the wheel."""
    local = Path("config.yml")
    if local.is_file():
        return local
    packaged = resources.files("pipelines").joinpath("_bundled/config.yml")
    if packaged.is_file():
        return Path(str(packaged))
    raise UsageError("no config.yml in the current directory; pass --config PATH")


def with_target(config: Config, catalog: str | None, schema: str | None) -> Config:
    """The config with its catalog/schema overridden (e.g. per bundle target), validated as usual."""
    updates = {k: v for k, v in (("catalog", catalog), ("schema", schema)) if v}
    if not updates:
        return config
    try:
        pipeline = PipelineSettings.model_validate(
            {**config.pipeline.model_dump(by_alias=True), **updates})
    except ValidationError as exc:
        raise ConfigError([Problem(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}", value=e.get("input"))
                           for e in exc.errors()]) from None
    return config.model_copy(update={"pipeline": pipeline})
