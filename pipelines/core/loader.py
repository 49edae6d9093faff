"""Finds and imports transformation functions: `{transformations}/{layer}/{name}.py` defines `{name}`.

`transformations` is either a folder (relative to config.yml) or a dotted package. Loading also
checks that each function's parameters match what the engine will pass: one keyword argument per
`depends_on` entry, `source` for tables with a source, and optionally `spark`. A CDC table
(`cdc:` / `snapshot_cdc:`) may have no module: its one input is then used as it is (`PassThrough`).
A table with `flows:` has no function of its own: each flow may have one, named after the flow, in the
table's layer folder; a flow reading one input needs none.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable

from .config import Config, TableConfig
from .errors import ConfigError, Problem
from .sql_definitions import SOURCE, SqlProblem, load_sql

Transformation = Callable[..., object]
_SPARK = "spark"
_SOURCE = SOURCE
FOLDER_PACKAGE = "_ldp_transformations_"  # + a hash of the folder: folder modules' synthetic package


@dataclass(frozen=True)
class ModuleLocation:
    """Where a table's module lives: a dotted name (package mode) or a file (folder mode)."""

    module_name: str
    file: Path | None  # set in folder mode

    def describe(self) -> str:
        return str(self.file) if self.file else self.module_name

    @property
    def kind(self) -> str:
        """What the module holds, for messages: a `type: python` sink's function or a transformation."""
        return "sink" if self.module_name.rsplit(".", 2)[-2:-1] == ["sinks"] else "transformation"


def is_folder(transformations: str) -> bool:
    return "/" in transformations or "\\" in transformations or transformations.startswith(".")


def locate(config: Config, table: TableConfig) -> ModuleLocation:
    return _module_in(config, table.layer, table.name)


def _module_in(config: Config, subfolder: str, name: str) -> ModuleLocation:
    """Module `name` of the transformations' `subfolder` (a layer, or `sinks`)."""
    spec = config.pipeline.transformations
    if is_folder(spec):
        folder, package = _folder_package(config.base_dir, spec)
        return ModuleLocation(f"{package}.{subfolder}.{name}", folder / subfolder / f"{name}.py")
    return ModuleLocation(f"{spec}.{subfolder}.{name}", None)


@lru_cache(maxsize=64)
def _folder_package(base_dir: Path, spec: str) -> tuple[Path, str]:
    """The transformations folder, resolved once per config rather than once per table (10,000 tables:
    ~0.5 s of `realpath`), and the package name its modules get."""
    folder = (base_dir / spec).resolve()
    return folder, FOLDER_PACKAGE + hashlib.sha1(str(folder).encode()).hexdigest()[:12]


def load_transformations(config: Config, tables: Iterable[TableConfig]) -> dict[str, Transformation]:
    """Import every table's function and check its signature; collect all problems, then raise."""
    functions: dict[str, Transformation] = {}
    problems: list[Problem] = []
    positions = {t.name: i for i, t in enumerate(config.tables)}
    for table in tables:
        for loaded in ([table] if not table.flows else [table.flow_config(flow) for flow in table.flows]):
            found = _load_checked(config, loaded, functions)
            problems.extend(p if not table.flows else _in_flow(p, table.name, loaded.name) for p in found)
    if problems:
        raise ConfigError([_with_context(p, config, positions) for p in problems])
    return functions


def _load_checked(config: Config, table: TableConfig, functions: dict[str, Transformation]) -> list[Problem]:
    """Load one table's (or flow's) function into `functions`; the problems found."""
    try:
        function = _load_one(config, table)
    except _LoadProblem as exc:
        return [exc.problem]
    except SqlProblem as exc:
        return list(exc.problems)
    functions[table.name] = function
    return check_signature(function, table)


def _in_flow(problem: Problem, table: str, flow: str) -> Problem:
    """A flow's problem, told as its table's (config.yml locates tables), naming the flow."""
    from dataclasses import replace
    return replace(problem, table=table, message=f"flow '{flow}': {problem.message}",
                   key=f"flows.{problem.key}" if problem.key else "flows")


def load_sink_functions(config: Config, tables: Iterable[TableConfig]) -> dict[str, Callable[..., object]]:
    """The `write(batch_df, batch_id)` function of every `type: python` sink of `tables`, by `module.function`;
    a module or function that is missing or takes other arguments is a config error naming the sink."""
    from .python_sink import SINKS_FOLDER, PythonSink

    functions: dict[str, Callable[..., object]] = {}
    problems: list[Problem] = []
    positions = {t.name: i for i, t in enumerate(config.tables)}
    for table in tables:
        for index, sink in enumerate(table.sinks):
            if not isinstance(sink, PythonSink) or sink.entry in functions:
                continue
            where = _module_in(config, SINKS_FOLDER, sink.module)
            shape = f"`def {sink.function}(batch_df, batch_id):`"
            try:
                module = _import(where, table.name, lambda: _LoadProblem(Problem(
                    f"sink module not found: {where.describe()}", table=table.name, key=f"sinks[{index}].module",
                    value=sink.module, hint=f"create {SINKS_FOLDER}/{sink.module}.py in the transformations "
                                            f"folder with {shape}")))
            except _LoadProblem as exc:
                problems.append(exc.problem)
                continue
            function = getattr(module, sink.function, None)
            if not callable(function) or not _takes_two(function):
                problems.append(Problem(
                    f"module {where.describe()} does not define {sink.function}(batch_df, batch_id)", table=table.name,
                    key=f"sinks[{index}].function", value=sink.function, hint=f"add {shape} to the module"))
                continue
            functions[sink.entry] = function
    if problems:
        raise ConfigError([_with_context(p, config, positions) for p in problems])
    return functions


def _takes_two(function: Callable[..., object]) -> bool:
    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # pragma: no cover - builtins without signatures
        return True
    return True


class _LoadProblem(Exception):
    def __init__(self, problem: Problem, missing: bool = False):
        self.problem = problem
        self.missing = missing  # the module does not exist (rather than failing to import)


@dataclass(frozen=True)
class PassThrough:
    """The transformation of a CDC table without a module: its one input (change feed or snapshots)
    as it is. Callable like a table function, with a signature naming that input."""

    input: str

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.Signature([inspect.Parameter(self.input, inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def __call__(self, **inputs: object) -> object:
        return inputs[self.input]


def _with_context(problem: Problem, config: Config, positions: dict[str, int]) -> Problem:
    from dataclasses import replace
    return replace(problem, file=problem.file or str(config.path),
                   index=positions.get(problem.table or ""))


def is_folder_module(module_name: str) -> bool:
    """Whether a module was loaded from a transformations folder (a name no other process can import)."""
    return module_name.startswith(FOLDER_PACKAGE)


def _load_one(config: Config, table: TableConfig) -> Transformation:
    where = locate(config, table)
    sql = sql_file(config, table)
    if sql is not None:
        if (where.file or sql.with_suffix(".py")).is_file():
            raise _LoadProblem(Problem(f"both {sql.name} and {sql.with_suffix('.py').name} define the table",
                                       table=table.name, key="name", value=table.name, hint="keep one of them"))
        inputs = tuple(table.depends_on) + ((SOURCE,) if table.source else ())
        return load_sql(sql, table.name, inputs, frozenset(config.by_name))
    try:
        module = _import(where, table.name, lambda: _missing(where, table))
    except _LoadProblem as exc:
        inputs = [*table.depends_on, *([_SOURCE] if table.source else [])]
        if exc.missing and (table.applies_changes or _is_flow(config, table)) and len(inputs) == 1:
            return PassThrough(inputs[0])  # CDC, or a flow of one input: the input is used as it is
        raise
    function = getattr(module, table.name, None)
    if function is None or not callable(function):
        raise _LoadProblem(Problem(
            f"module {where.describe()} does not define a function named '{table.name}'",
            table=table.name, key="name", value=table.name,
            hint=f"add `def {table.name}({_expected_params(table)}):` to the module"))
    return function


def _is_flow(config: Config, table: TableConfig) -> bool:
    return table.name not in config.by_name


def sql_file(config: Config, table: TableConfig) -> Path | None:
    """`{layer}/{name}.sql` beside where the table's module would be, if there is one."""
    folder = transformations_folder(config)
    candidate = folder / table.layer / f"{table.name}.sql" if folder else None
    return candidate if candidate and candidate.is_file() else None


def transformations_folder(config: Config) -> Path | None:
    """The folder of `pipeline.transformations` (a folder, or an importable package's), None if absent."""
    spec = config.pipeline.transformations
    if is_folder(spec):
        return _folder_package(config.base_dir, spec)[0]
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        return None
    locations = list(found.submodule_search_locations or []) if found else []
    return Path(locations[0]) if locations else None


def _import(where: ModuleLocation, table: str, missing: Callable[[], _LoadProblem]) -> ModuleType:
    """Folder modules are executed afresh on every load (edits in a notebook take effect);
    package modules use Python's normal import cache. `missing()` says what to do when there is none."""
    if where.file is not None:
        if not where.file.is_file():
            raise missing()
        spec = importlib.util.spec_from_file_location(where.module_name, where.file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[where.module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[where.module_name]
            raise _broken(where, table, exc) from None
        return module
    try:
        return importlib.import_module(where.module_name)
    except ModuleNotFoundError as exc:
        if exc.name and where.module_name.startswith(exc.name):
            raise missing() from None
        raise _broken(where, table, exc) from None
    except Exception as exc:  # noqa: BLE001 - user code may raise anything at import
        raise _broken(where, table, exc) from None


def _missing(where: ModuleLocation, table: TableConfig) -> _LoadProblem:
    return _LoadProblem(Problem(
        f"transformation module not found: {where.describe()}", table=table.name, key="name",
        value=table.name, hint=f"create {table.layer}/{table.name}.py in the transformations "
                               f"folder with `def {table.name}({_expected_params(table)}):`"), missing=True)


def _broken(where: ModuleLocation, table: str, exc: BaseException) -> _LoadProblem:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        detail = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return _LoadProblem(Problem(f"cannot import {where.kind} module {where.describe()}: {detail}", table=table))


def _expected_params(table: TableConfig) -> str:
    params = list(table.depends_on) + ([_SOURCE] if table.source else [])
    return ", ".join(params)


def check_signature(function: Transformation, table: TableConfig) -> list[Problem]:
    """Parameters must match depends_on (+ source, + optional spark); report each mismatch."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return []
    allowed = set(table.depends_on) | {_SPARK} | ({_SOURCE} if table.source else set())
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    expected = f"expected `def {table.name}({_expected_params(table)})`"
    problems = []
    for name, param in parameters.items():
        if param.kind is param.POSITIONAL_ONLY:
            problems.append(Problem(f"parameter '{name}' is positional-only; inputs are passed by name",
                                    table=table.name, key="depends_on", hint=expected))
        elif (param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
              and name not in allowed and param.default is param.empty):
            what = ("the table has no source" if name == _SOURCE
                    else "it is not in depends_on")
            problems.append(Problem(f"function parameter '{name}' cannot be filled: {what}",
                                    table=table.name, key="depends_on", value=list(table.depends_on),
                                    hint=expected))
    if not takes_any:
        for needed in list(table.depends_on) + ([_SOURCE] if table.source else []):
            if needed not in parameters:
                key = "source" if needed == _SOURCE else "depends_on"
                problems.append(Problem(f"function has no parameter '{needed}' for its {key}",
                                        table=table.name, key=key, hint=expected))
    return problems


def call_transformation(function: Transformation, inputs: dict[str, object], spark: object) -> object:
    """Call with the upstream DataFrames (and source/spark where the function asks for them)."""
    parameters = inspect.signature(function).parameters
    kwargs = dict(inputs)
    if _SPARK in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        kwargs.setdefault(_SPARK, spark)
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    return function(**kwargs)
