"""Tables defined in SQL: parsed and checked before Spark starts, every problem located in the .sql file."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipelines.core.config import load_config
from pipelines.core.loader import load_transformations
from pipelines.core.sql_definitions import SqlTransformation
from pipelines.engine.cli import cli
from tests.conftest import write_project

CONFIG = """\
pipeline: {transformations: ./transformations}
tables:
  - {name: orders, layer: bronze, source: {type: files, format: json, path: ./landing}}
  - {name: customers, layer: bronze, source: {type: files, format: json, path: ./landing}}
  - {name: revenue, layer: gold, depends_on: [orders, customers]}
"""
BRONZE = {"bronze/orders.py": "def orders(source):\n    return source\n",
          "bronze/customers.py": "def customers(source):\n    return source\n"}
REVENUE = """-- revenue per country {not a placeholder}
SELECT c.country, sum(o.amount) AS revenue, '{x}' AS braces
FROM orders AS o
JOIN customers c ON c.id = o.customer_id
GROUP BY c.country
"""


def project(root: Path, sql: str, extra: dict[str, str] | None = None) -> Path:
    config = write_project(root, CONFIG, {**BRONZE, "gold/revenue.sql": sql, **(extra or {})})
    (root / "landing").mkdir()
    return config


def validate(config: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", "--config", str(config), "--format", "json"],
                                catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout).get("errors", [])


def test_a_sql_table_loads_as_a_transformation_with_its_inputs_as_placeholders(tmp_path):
    config = load_config(project(tmp_path, REVENUE))
    function = load_transformations(config, config.tables)["revenue"]
    assert isinstance(function, SqlTransformation)
    assert function.template == REVENUE.replace("{not a placeholder}", "{{not a placeholder}}").replace(
        "'{x}'", "'{{x}}'").replace("FROM orders", "FROM {orders}").replace("JOIN customers", "JOIN {customers}")
    assert validate(tmp_path / "config.yml") == (0, [])


def test_the_query_runs_through_spark_sql_with_the_inputs_by_name(tmp_path):
    config = load_config(project(tmp_path, REVENUE))
    function = load_transformations(config, config.tables)["revenue"]
    calls = []

    class Spark:
        def sql(self, query, **kwargs):
            calls.append((query.format(**{k: f"<{v}>" for k, v in kwargs.items()}), kwargs))
            return "df"

    assert function(Spark(), orders="O", customers="C") == "df"
    [(query, kwargs)] = calls
    assert "FROM <O> AS o\nJOIN <C> c" in query and "{not a placeholder}" in query and "'{x}'" in query
    assert kwargs == {"orders": "O", "customers": "C"}


def test_a_parse_error_names_the_sql_file_line_and_column(tmp_path):
    project(tmp_path, "SELECT country,\nFROM orders JOIN customers ON WHERE\n")
    code, errors = validate(tmp_path / "config.yml")
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith(f"{tmp_path}/transformations/gold/revenue.sql:2:"), errors
    assert "table 'revenue'" in errors[0] and "cannot parse the SQL" in errors[0]


def test_unknown_and_undeclared_names_are_located_with_the_fix(tmp_path):
    sql = "SELECT * FROM orders\nJOIN custmers USING (id)\nJOIN retail.countries USING (country)\n"
    config = write_project(tmp_path, CONFIG.replace("depends_on: [orders, customers]", "depends_on: [orders]")
                           + "  - {name: extra, layer: silver, depends_on: [orders]}\n",
                           {**BRONZE, "gold/revenue.sql": sql.replace("custmers", "customers"),
                            "silver/extra.sql": "SELECT * FROM orders JOIN custmers USING (id)"})
    (tmp_path / "landing").mkdir()
    code, errors = validate(config)
    assert code == 1
    assert errors == [
        f"{tmp_path}/transformations/gold/revenue.sql:2:6, table 'revenue', key 'depends_on': the query reads "
        "'customers', which is not one of its inputs (orders); add 'customers' to the table's depends_on",
        f"{tmp_path}/transformations/silver/extra.sql:1:27, table 'extra', key 'depends_on': the query reads "
        "'custmers', which is not one of its inputs (orders); upstream tables are named as in config.yml; "
        "other tables need schema.table"]


def test_an_unread_input_a_non_select_and_two_definitions_are_refused(tmp_path):
    config = project(tmp_path, "SELECT * FROM orders")
    assert validate(config)[1] == [f"{config}:5, table 'revenue', key 'depends_on': the query in revenue.sql "
                                   "never reads its input 'customers'; read it (FROM customers) or remove it"]
    (tmp_path / "transformations/gold/revenue.sql").write_text("INSERT INTO orders SELECT * FROM customers")
    [error] = validate(config)[1]
    assert "must hold exactly one SELECT (found 1 statement(s), the first a INSERT)" in error
    (tmp_path / "transformations/gold/revenue.sql").write_text(REVENUE)
    (tmp_path / "transformations/gold/revenue.py").write_text("def revenue(orders, customers):\n    return orders\n")
    [error] = validate(config)[1]
    assert "both revenue.sql and revenue.py define the table (got 'revenue'); keep one of them" in error


def test_ctes_and_the_source_name(tmp_path):
    config = write_project(tmp_path, CONFIG.replace("depends_on: [orders, customers]", "depends_on: [orders]"), {
        **BRONZE, "gold/revenue.sql": "WITH big AS (SELECT * FROM orders WHERE amount > 10)\nSELECT * FROM big",
        "bronze/customers.sql": "SELECT DISTINCT * FROM source"})
    (tmp_path / "transformations/bronze/customers.py").unlink()
    (tmp_path / "landing").mkdir()
    assert validate(config) == (0, [])
    functions = load_transformations(load_config(config), load_config(config).tables)
    assert functions["customers"].template == "SELECT DISTINCT * FROM {source}"
    assert functions["revenue"].template.endswith("FROM {orders} WHERE amount > 10)\nSELECT * FROM big")
