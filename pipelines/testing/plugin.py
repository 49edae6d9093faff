"""pytest plugin (auto-registered by the wheel): a session-scoped local SparkSession fixture, and a
project's transformations importable without any `pythonpath` setting.

Use it to unit-test transformation functions with chispa:

    def test_orders_silver(spark, transformation):
        orders_silver = transformation("orders_silver")   # the function config.yml runs for that table
        assert_df_equality(orders_silver(orders_bronze=..., customers_silver=...), expected)

A table with `cdc:` is tested as AUTO CDC keeps it, from change events through the engine's own code:

    def test_customers_history(cdc_target):
        history = cdc_target("customers_history", customers_bronze=...)   # SCD 2: __START_AT, __END_AT

The project is the `config.yml` named by `--ldp-config`, else `LDP_CONFIG`, else the one in pytest's
rootdir. In folder mode (`transformations: ./transformations`) the folder's parent goes on `sys.path`
(and on the Python workers' `PYTHONPATH`), so `from transformations.silver.x import x` works too.

The session runs `local[2]`, binds to 127.0.0.1, uses UTC, and keeps its catalog in a temporary
folder, so tests never touch the project's `.ldp/` state. Connectors beyond Delta (a JDBC driver) are
Maven packages named in the ini file's `ldp_spark_packages` (one per line), fetched once and cached.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pipelines.core.config import Config

CONFIG_OPTION = "--ldp-config"
CONFIG_ENV = "LDP_CONFIG"  # as `ldp_engine --config` reads it
PACKAGES_INI = "ldp_spark_packages"
_PROJECT = pytest.StashKey["Path | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("ldp").addoption(
        CONFIG_OPTION, dest="ldp_config", default=None,
        help="The project's config.yml for the `transformation` fixture [default: env LDP_CONFIG, "
             "else config.yml in the rootdir].")
    parser.addini(PACKAGES_INI, type="linelist", default=[],
                  help="Maven packages the `spark` fixture's session loads besides Delta (group:artifact:version).")


def pytest_configure(config: pytest.Config) -> None:
    """Find the project before tests are collected, so test modules may import its transformations."""
    path = project_config(config.getoption("ldp_config"), config.rootpath)
    config.stash[_PROJECT] = path
    if path is not None:  # test modules import transformations (and their @F.udf("string")) first
        from pipelines.engine.pyspark_support import prepare_imports

        prepare_imports()
    folder = transformations_folder(path) if path else None
    if folder is not None:
        importable(folder.parent)


def project_config(option: str | None, rootdir: Path) -> Path | None:
    """--ldp-config, else LDP_CONFIG, else {rootdir}/config.yml; None when there is none (a plain
    test suite: the plugin then only offers `spark`)."""
    named = option or os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).resolve()
    found = rootdir / "config.yml"
    return found.resolve() if found.is_file() else None


def transformations_folder(path: Path) -> Path | None:
    """The folder of a folder-mode project (None in package mode, or when config.yml cannot be read:
    the `transformation` fixture then reports why)."""
    from pipelines.core.config import load_config
    from pipelines.core.errors import EngineError
    from pipelines.core.loader import is_folder

    try:
        loaded = load_config(path)
    except EngineError:
        return None
    spec = loaded.pipeline.transformations
    return (loaded.base_dir / spec).resolve() if is_folder(spec) else None


def importable(folder: Path) -> None:
    """Put `folder` first on this interpreter's path and on the path Spark's Python workers start with
    (a UDF defined in a transformation module is imported there by its module name)."""
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if entry not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([entry, *filter(None, paths)])


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[SparkSession]:
    from pipelines.catalog.session import local_session

    session = local_session(tmp_path_factory.mktemp("ldp_spark"), app_name="pytest", master="local[2]",
                            packages=pytestconfig.getini(PACKAGES_INI))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ldp_config(pytestconfig: pytest.Config) -> Config:
    """The project's validated config (see the module docstring for where it is found)."""
    from pipelines.core.config import load_config
    from pipelines.core.errors import EngineError

    path = pytestconfig.stash.get(_PROJECT, None)
    if path is None:
        pytest.fail(f"no config.yml in {pytestconfig.rootpath}: pass {CONFIG_OPTION} PATH or set {CONFIG_ENV}",
                    pytrace=False)
    try:
        return load_config(path)
    except EngineError as exc:  # as `ldp_engine validate` prints it, not a traceback into the engine
        pytest.fail(exc.render(), pytrace=False)


@pytest.fixture(scope="session")
def transformation(ldp_config: Config) -> Callable[[str], Callable[..., object]]:
    """`transformation("orders_silver")`: the function the engine runs for that table, loaded and its
    signature checked exactly as a run does (the same loader, so a test cannot pass on a module the
    engine would refuse)."""
    from pipelines.core.errors import EngineError
    from pipelines.core.loader import load_transformations

    def load(name: str) -> Callable[..., object]:
        table = ldp_config.by_name.get(name)
        if table is None:
            pytest.fail(f"no table '{name}' in {ldp_config.path}; tables: "
                        f"{', '.join(t.name for t in ldp_config.tables)}", pytrace=False)
        try:
            return load_transformations(ldp_config, [table])[name]
        except EngineError as exc:
            pytest.fail(exc.render(), pytrace=False)

    return load


@pytest.fixture(scope="session")
def cdc_target(ldp_config: Config, transformation: Callable[[str], Callable[..., object]]
               ) -> Callable[..., "DataFrame"]:
    """`cdc_target("customers_history", customers_bronze=df)`: the table as a local run keeps it from
    these inputs: its transformation (its one input as it is, for a table without a module), then its
    `cdc:` applied by key and sequence with the engine's code. Its checks are not run: a NULL key or
    sequence raises, where a run would have quarantined the event."""
    from pipelines.catalog.cdc import apply_changes

    def apply(name: str, **inputs: object) -> DataFrame:
        function = transformation(name)
        spec = ldp_config.by_name[name].cdc
        if spec is None:
            pytest.fail(f"table '{name}' in {ldp_config.path} has no cdc: block", pytrace=False)
        return apply_changes(function(**inputs), spec, table=name)  # type: ignore[arg-type]

    return apply
