"""A small project on disk plus a runner on the shared session, for Spark-level tests."""
from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import urlparse

from pipelines.core.graph import Selection
from pipelines.engine.project import load_project
from pipelines.runners.spark import SparkRunner
from pipelines.catalog.storage import TableStore
from tests.conftest import write_project

_schemas = itertools.count()

MODULES = {
    "bronze/raw.py": "def raw(source):\n    return source\n",
    "silver/clean.py": "from pyspark.sql import functions as F\n"
                       "def clean(raw):\n    return raw.where(F.col('amount') > 0)\n",
    "silver/other.py": "def other(raw):\n    return raw.groupBy('id').count()\n",
    "gold/report.py": "from pyspark.sql import functions as F\n"
                      "def report(clean):\n    return clean.agg(F.sum('amount').alias('total'))\n",
}


# A project whose silver table carries DQX checks (quality and registrar tests)
CHECKED_MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n",
                   "silver/clean.py": "def clean(raw):\n    return raw\n",
                   "gold/report.py": "def report(clean):\n    return clean.groupBy().count()\n"}
CHECKS = """
      - {name: id_present, criticality: error, check: {function: is_not_null, arguments: {column: id}}}
      - {name: amount_positive, criticality: error,
         check: {function: sql_expression, arguments: {expression: "amount > 0"}}}
      - {name: amount_small, criticality: warn,
         check: {function: is_in_range, arguments: {column: amount, min_limit: 0, max_limit: 1000}}}
      - {name: email_valid, criticality: warn,
         check: {function: regex_match, arguments: {column: email, regex: '^[^@]+@[^@]+$'}}}
"""


def checked_config(on_error: str, checks: str = CHECKS) -> str:
    """raw (csv files in ./in) -> clean, checked with `checks` under `on_error` -> report; schema SCHEMA."""
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source: {{type: files, format: csv, path: ./in, options: {{header: true, inferSchema: true}}}}
  - name: clean
    layer: silver
    depends_on: [raw]
    on_error: {on_error}
    expectations:{checks}
  - {{name: report, layer: gold, depends_on: [clean]}}
"""


def project_config(schema: str, extra: str = "") -> str:
    return f"""
pipeline: {{schema: {schema}, transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source: {{type: files, format: csv, path: ./in, options: {{header: true, inferSchema: true}}}}
  - {{name: clean, layer: silver, depends_on: [raw], partition_cols: [id], comment: "only positive",
     table_properties: {{team: data-eng}}}}
  - {{name: other, layer: silver, depends_on: [raw]}}
  - {{name: report, layer: gold, depends_on: [clean]}}
{extra}"""


def add_file(root: Path, name: str, rows: list[tuple[int, int]]) -> None:
    folder = root / "in"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("id,amount\n" + "".join(f"{i},{a}\n" for i, a in rows))


class Harness:
    def __init__(self, spark, root: Path, modules: dict[str, str] = MODULES, extra: str = "",
                 config: str | None = None):
        self.spark = spark
        self.root = root
        self.schema = f"t{next(_schemas)}"
        self.path = write_project(root, config.replace("SCHEMA", self.schema) if config else
                                  project_config(self.schema, extra), modules)
        self.events: list[tuple[str, str]] = []

    def run(self, selection: Selection = Selection(), mode: str = "batch", **options):
        project = load_project(self.path, selection, mode)
        store = TableStore(self.spark, project.plan.pipeline, self.root / ".ldp")
        runner = SparkRunner(self.spark, project.plan, project.functions, store,
                             on_event=lambda kind, r: self.events.append((kind, r.name)), **options)
        result = runner.run()
        return {t.name: t for t in result.tables}, result

    def table(self, name: str):
        return self.spark.table(f"{self.schema}.{name}")

    @property
    def catalog(self) -> Path:
        """The shared session's state folder: its tables are under `{catalog}/warehouse` (what the
        JVM-free readers and `--state-dir` of `show`, `history`, `restore` take)."""
        return catalog_of(self.spark)


def catalog_of(spark) -> Path:
    return Path(urlparse(spark.conf.get("spark.sql.warehouse.dir")).path).parent


