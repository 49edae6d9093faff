"""What everyday PySpark in a project's modules needs around their import, for every runner.

Before the import: UDFs with DDL-string return types must be creatable with no Spark session (modules
are imported before Spark starts). After it: folder-mode modules are shipped to the Python workers by
value, and what cannot work in a pipeline query function is reported as located warnings. The pyspark
side lives in `pipelines.catalog.pyspark_compat`; the static look in `pipelines.core.static_checks`.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterable, Mapping

from pipelines.core.config import TableConfig
from pipelines.core.errors import Problem
from pipelines.core.loader import Transformation, is_folder_module
from pipelines.core.static_checks import pipeline_warnings

log = logging.getLogger(__name__)


def prepare_imports() -> None:
    """Let modules create `@F.udf("string")`/`@F.pandas_udf("string")` before any session exists."""
    try:
        from pipelines.catalog.pyspark_compat import install_udf_type_parsing
    except ImportError:  # pragma: no cover - pyspark not installed: a runtime brings its own
        return
    install_udf_type_parsing()


def ship_folder_modules(functions: Mapping[str, Transformation]) -> None:
    """Folder modules' UDFs are pickled by value: the workers cannot import their synthetic names."""
    modules = {sys.modules[name] for f in functions.values()
               if is_folder_module(name := getattr(f, "__module__", "") or "") and name in sys.modules}
    if not modules:
        return
    try:
        from pipelines.catalog.pyspark_compat import pickle_by_value
    except ImportError:  # pragma: no cover - pyspark not installed
        return
    pickle_by_value(modules)


def static_warnings(tables: Iterable[TableConfig], functions: Mapping[str, Transformation]) -> tuple[Problem, ...]:
    """Each table function's calls that fail in a pipeline query function (see pipelines.core.static_checks)."""
    warnings: list[Problem] = []
    files_seen: set[tuple[str, str]] = set()
    for table in tables:
        code = getattr(functions.get(table.name), "__code__", None)
        if code is None or (code.co_filename, code.co_name) in files_seen:
            continue
        files_seen.add((code.co_filename, code.co_name))
        warnings.extend(pipeline_warnings(Path(code.co_filename), code.co_name, table.name))
    return tuple(warnings)


def log_warnings(warnings: Iterable[Problem]) -> None:
    for warning in warnings:
        log.warning("%s", warning.render())
