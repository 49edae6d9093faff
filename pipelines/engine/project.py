"""Load a project: config → plan → transformation functions, reporting every problem at once.

This is what `validate`, `--dry-run` and a run share; nothing here starts Spark.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from pydantic import ValidationError

from pipelines.core.config import Config, PipelineSettings, load_config, with_lines
from pipelines.core.errors import ConfigError, Problem, RunError, UsageError, describe_error
from pipelines.core.graph import Selection
from pipelines.core.rules import RuleVersion
from pipelines.core.cdc_checks import cdc_problems
from pipelines.core.source_checks import source_problems, source_warnings
from pipelines.quality.checks import check_problems, validate_expectations

from pipelines.core.loader import Transformation, load_sink_functions, load_transformations
from pipelines.core.plan import Mode, Plan, build_plan

from . import pyspark_support as support

if TYPE_CHECKING:
    from pipelines.lakebase.connection import Lakebase


@dataclass(frozen=True)
class Project:
    plan: Plan
    functions: dict[str, Transformation]
    published: Mapping[str, RuleVersion] = field(default_factory=dict)  # tables enforcing published rules
    warnings: tuple[Problem, ...] = ()  # code that fails on some runners (pipelines.core.static_checks)
    sink_functions: Mapping[str, Callable[..., object]] = field(default_factory=dict)  # `type: python` sinks'

    @property
    def rules_versions(self) -> dict[str, int]:
        return {name: rules.version for name, rules in self.published.items()}

    @property
    def config(self) -> Config:
        return self.plan.config


PublishedRules = Callable[[Config], Mapping[str, RuleVersion]]


def load_project(config_path: str | Path | Config, selection: Selection = Selection(), mode: Mode = "batch",
                 check_all_modules: bool = False, catalog: str | None = None,
                 schema: str | None = None, published: PublishedRules | None = None,
                 log_warnings: bool = True) -> Project:
    """Validate the config, graph, selection and modules; raise one ConfigError listing all problems.

    Modules are checked for the selected tables only, unless `check_all_modules` (as `validate` does)
    or the graph itself is broken (then there is no selection to restrict to). Code that works only on
    the Spark runner is kept in `Project.warnings` (logged unless `log_warnings` is False). With
    `pipeline.rules_source: lakebase`, each table's active published checks (from `published`, else read
    from the configured Lakebase) replace its config checks, validated the same way. A `Config` already
    loaded (a launch needs its `lakebase:` block first) is used as it is, not read again.
    """
    loaded = config_path if isinstance(config_path, Config) else load_config(config_path)
    config = with_target(loaded, catalog, schema)
    problems: list[Problem] = []
    active: Mapping[str, RuleVersion] = {}
    if config.pipeline.rules_source == "lakebase":
        active = (published or read_published)(config)
        where = f"lakebase {config.lakebase.meta_schema}.dq_rules_events"
        for name, rules in active.items():
            problems += check_problems(rules.rules, file=where, table=name, key=f"version {rules.version}")
        config = with_published(config, active)
    plan: Plan | None = None
    try:
        plan = build_plan(config, selection, mode)
    except ConfigError as exc:
        problems.extend(exc.problems)
    tables = config.tables if check_all_modules or plan is None else [t.config for t in plan.tables]
    functions: dict[str, Transformation] = {}
    try:
        support.prepare_imports()
        functions = load_transformations(config, tables)
        support.ship_folder_modules(functions)
    except ConfigError as exc:
        problems.extend(exc.problems)
    sink_functions: dict[str, Callable[..., object]] = {}
    try:
        sink_functions = load_sink_functions(config, tables)
    except ConfigError as exc:
        problems.extend(exc.problems)
    problems.extend(validate_expectations(config, [t for t in tables if t.name not in active]))
    problems.extend(source_problems(config, tables))
    problems.extend(cdc_problems(config, tables, functions))
    if problems:
        raise ConfigError(with_lines(problems, loaded.path.read_text(encoding="utf-8")))
    assert plan is not None
    found = source_warnings(config, tables, mode)
    warnings = support.static_warnings(tables, functions) + tuple(
        with_lines(found, loaded.path.read_text(encoding="utf-8")) if found else ())
    if log_warnings:
        support.log_warnings(warnings)
    return Project(plan=plan, functions=functions, published=active, warnings=warnings,
                   sink_functions=sink_functions)


def with_published(config: Config, active: Mapping[str, RuleVersion]) -> Config:
    """The config whose tables check their active published version instead of their own checks."""
    return config.with_tables(tuple(
        t.model_copy(update={"expectations": tuple(active[t.name].rules), "expectations_file": None})
        if t.name in active else t for t in config.tables))


def read_published(config: Config, lakebase: "Lakebase | None" = None) -> Mapping[str, RuleVersion]:
    """Every table's active published checks, from `lakebase` or a connection made for this read."""
    from pipelines.catalog.session import state_dir
    from pipelines.lakebase.connection import Lakebase
    from pipelines.lakebase.rules import active_versions

    server = lakebase or Lakebase(config.lakebase, state_dir())
    try:
        return active_versions(server.connect, config.lakebase.meta_schema, [t.name for t in config.tables])
    except Exception as exc:  # noqa: BLE001 - no table may run on rules it could not read
        raise RunError(Problem(f"cannot read the published rules: {describe_error(exc)}", file=str(config.path),
                               key="pipeline.rules_source", value="lakebase",
                               hint="see: ldp_engine lakebase status")) from None
    finally:
        if server is not lakebase:
            server.close()


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
