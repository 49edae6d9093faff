"""A SQL-defined table on the Spark runner: the same rows as the Python function it replaces, with
checks and quarantine, reading upstream tables (without DQX's columns) and its own source by name."""
from __future__ import annotations

from tests.comparison import assert_same_table
from tests.spark.harness import CHECKS, Harness, add_file, checked_config

SQL_MODULES = {
    "bronze/raw.sql": "-- the landing rows as they are\nSELECT * FROM source\n",
    "silver/clean.sql": "SELECT id, amount, concat('u', id, '@x.io') AS email FROM raw",
    "gold/report.sql": "SELECT count(*) AS count FROM clean",
}
PYTHON_MODULES = {
    "bronze/raw.py": "def raw(source):\n    return source\n",
    "silver/clean.py": "from pyspark.sql import functions as F\n\n\ndef clean(raw):\n"
                       "    return raw.select('id', 'amount', F.concat(F.lit('u'), 'id', F.lit('@x.io')).alias('email'))\n",
    "gold/report.py": "def report(clean):\n    return clean.groupBy().count()\n",
}


def test_sql_tables_equal_their_python_twins_checks_and_quarantine_included(spark, tmp_path):
    results = {}
    for kind, modules in (("sql", SQL_MODULES), ("python", PYTHON_MODULES)):
        (tmp_path / kind).mkdir()
        harness = Harness(spark, tmp_path / kind, modules, config=checked_config("quarantine", CHECKS))
        add_file(harness.root, "a.csv", [(1, 10), (2, -5), (3, 2000)])
        tables, run = harness.run()
        assert run.succeeded, run.to_dict()
        results[kind] = (harness, tables)
    (sql, sql_tables), (python, python_tables) = results["sql"], results["python"]
    assert {n: (t.rows_written, t.rows_quarantined) for n, t in sql_tables.items()} == {
        "raw": (3, 0), "clean": (2, 1), "report": (1, 0)}
    assert [c.to_dict() for c in sql_tables["clean"].checks] == [c.to_dict() for c in python_tables["clean"].checks]
    for name in ("raw", "clean", "clean_quarantine", "report"):
        assert_same_table(sql.table(name), python.table(name))
