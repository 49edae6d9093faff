"""Schema contracts in config.yml: declared types canonical as Spark prints them, every mistake located."""
from __future__ import annotations

import pytest

from pipelines.core.contracts import ColumnSpec, ContractMode, RowFilter, canonical_type, contract_problems, schema_ddl
from tests.unit.test_config import problems_of


@pytest.mark.parametrize("declared, spark", [
    ("STRING", "string"), ("integer", "int"), ("long", "bigint"), ("short", "smallint"), ("byte", "tinyint"),
    ("real", "float"), ("bool", "boolean"), ("timestamp_ltz", "timestamp"), ("TIMESTAMP_NTZ", "timestamp_ntz"),
    ("decimal", "decimal(10,0)"), ("numeric(12)", "decimal(12,0)"), ("DECIMAL(12, 2)", "decimal(12,2)"),
    ("varchar(20)", "string"), ("array< long >", "array<bigint>"), ("map<string, array<int>>", "map<string,array<int>>"),
    ("struct<Id int, `when`: date, tags: array<string>>", "struct<Id:int,when:date,tags:array<string>>"),
])
def test_declared_types_read_as_spark_prints_them(declared, spark):
    assert canonical_type(declared) == spark


@pytest.mark.parametrize("declared, message", [
    ("strng", "unknown type 'strng'; did you mean 'string'?"),
    ("array<int", "has no closing '>'"),
    ("map<string>", "map takes 2 type(s)"),
    ("decimal(40,2)", "decimal precision must be 1-38"),
    ("int int", "unexpected 'int' after 'int'"),
    ("string!", "cannot read '!'"),
])
def test_a_type_spark_cannot_read_says_what(declared, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        canonical_type(declared)


def test_the_comparison_names_missing_retyped_and_undeclared_columns():
    columns = [ColumnSpec(name="id", type="int"), ColumnSpec(name="email", type="string")]
    actual = {"id": "bigint", "note": "string"}
    assert contract_problems(columns, ContractMode.ENFORCED, actual) == (
        ["column email is missing (declared string)", "column id is bigint, declared int",
         "column note (string) is not declared"], ["note"])
    assert contract_problems(columns, ContractMode.ADDITIVE, actual) == (
        ["column email is missing (declared string)", "column id is bigint, declared int"], ["note"])
    assert contract_problems(columns, ContractMode.OFF, actual) == ([], [])


def test_schema_ddl_quotes_names_escapes_comments_and_masks_only_on_request():
    columns = [ColumnSpec(name="e mail", type="string", comment="it's", mask="gov.masks.email"),
               ColumnSpec(name="n", type="decimal(5,1)")]
    assert schema_ddl(columns, masks=False) == "`e mail` string COMMENT 'it\\'s', `n` decimal(5,1)"
    assert schema_ddl(columns, masks=True, extra=[("_warnings", "array<string>")]) == (
        "`e mail` string COMMENT 'it\\'s' MASK gov.masks.email, `n` decimal(5,1), `_warnings` array<string>")


def test_row_filter_reads_function_and_columns():
    parsed = RowFilter.parse("gov.filters.by_region ON (country, `region`)")
    assert (parsed.function, parsed.columns) == ("gov.filters.by_region", ("country", "region"))
    assert str(parsed) == "ROW FILTER gov.filters.by_region ON (`country`, `region`)"
    assert parsed.model_dump() == "gov.filters.by_region ON (country, region)"  # --show-config, as written
    assert RowFilter.parse(parsed.model_dump()) == parsed


TABLE = """
tables:
  - name: a
    layer: bronze
    source: {type: table, table: x}
"""


def test_contract_mistakes_are_located_config_errors():
    problems = problems_of(TABLE + """    columns:
      - {name: id, type: strng}
      - {name: email, type: string, mask: masks_email}
      - {name: id, type: int}
  - name: b
    layer: bronze
    source: {type: table, table: x}
    contract: additive
  - name: c
    layer: bronze
    source: {type: table, table: x}
    contract: additive
    columns: [{name: email, type: string, mask: gov.masks.email}]
  - name: d
    layer: bronze
    source: {type: table, table: x}
    columns: [{name: id, type: int}, {name: id, type: bigint}]
    row_filter: gov.f ON ()
  - name: e
    layer: bronze
    source: {type: table, table: x}
    columns: [{name: id, type: int}]
    row_filter: gov.filters.by_region ON (country)
""")
    assert problems == [
        "cfg/config.yml:7, table 'a', key 'columns': column id: unknown type 'strng'; did you mean 'string'?",
        "cfg/config.yml:7, table 'a', key 'columns': column email: mask 'masks_email' must name a function as "
        "schema.function or catalog.schema.function",
        "cfg/config.yml:10, table 'b': contract: additive needs the table's columns: (name and type of each)",
        "cfg/config.yml:14, table 'c': column(s) email declare a mask, which needs contract: enforced (Databricks "
        "declares masks in the table's full schema)",
        "cfg/config.yml:22, table 'd', key 'columns': declares column(s) id more than once "
        "(got [{'name': 'id', 'type': 'int'}, {'name': 'id', 'type': 'bigint'}])",
        "cfg/config.yml:23, table 'd', key 'row_filter': row_filter 'gov.f ON ()' must pass at least one column "
        "to its function",
        "cfg/config.yml:24, table 'e': row_filter passes column(s) country that columns: does not declare",
    ]
