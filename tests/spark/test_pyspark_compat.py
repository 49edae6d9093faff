"""The session-free DDL type parser gives exactly Spark's types (its results are cached in the UDFs
created before a session exists, and used once one does)."""
from __future__ import annotations

import pytest
from pyspark.sql.types import _parse_datatype_string

from pipelines.catalog.pyspark_compat import parse_ddl_type

DDL = ["string", "STRING", "int", "integer", "bigint", "long", "smallint", "short", "tinyint", "byte",
       "boolean", "float", "real", "double", "date", "timestamp", "timestamp_ltz", "timestamp_ntz", "binary",
       "void", "decimal", "decimal(12)", "decimal(10, 2)", "DEC(5,1)", "numeric(38,18)", "array<string>",
       "map<string, bigint>", "array<map<string,array<double>>>", "struct<a:int,b:string>",
       "struct<a: struct<x:date>, b:array<int>>", "a int", "a int, b string", "a: double, b: decimal(4,2)",
       "name string, tags array<string>, attrs map<string,int>", " int "]


@pytest.mark.parametrize("ddl", DDL)
def test_session_free_parse_equals_sparks(spark, ddl):
    assert parse_ddl_type(ddl) == _parse_datatype_string(ddl)


@pytest.mark.parametrize("ddl", ["char(3)", "varchar(5)", "a int not null", "a int comment 'x'",
                                 "`a b` int", "interval day", "string collate UTF8_LCASE", "array<int", "blabla"])
def test_forms_it_does_not_know_are_left_to_spark(ddl):
    assert parse_ddl_type(ddl) is None


def test_connect_numeric_aggregations_skip_the_schema_only_inside_a_query_function():
    """Connect's GroupedData.sum("c") reads the schema (refused in a pipeline query function); inside
    `lazy_aggregations` it builds the same unaliased aggregate without it, so names stay `sum(c)`."""
    from pyspark.sql.connect import plan
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.group import GroupedData

    from pipelines.catalog.pyspark_compat import lazy_aggregations

    class NoSchema(DataFrame):
        @property
        def schema(self):
            raise RuntimeError("schema read")

    grouped = GroupedData(NoSchema(plan.Read("t"), session=object()), group_type="groupby", grouping_cols=[])
    with lazy_aggregations():
        total, mean = grouped.sum("amount", "qty"), grouped.mean("x")
        with pytest.raises(RuntimeError, match="schema read"):
            grouped.max()  # all numeric columns: only the schema knows them
    assert [str(c) for c in total._plan._aggregate_cols] == ["Column<'sum(amount)'>", "Column<'sum(qty)'>"]
    assert [str(c) for c in mean._plan._aggregate_cols] == ["Column<'avg(x)'>"]
    with pytest.raises(RuntimeError, match="schema read"):
        grouped.sum("amount")  # outside a query function: Connect's own checks


def test_connect_sql_builds_its_relation_without_a_round_trip_only_inside_a_query_function():
    """Connect's spark.sql executes the query on the server before returning (analyzing it, in a
    pipeline query function, before its upstream tables exist); inside `lazy_aggregations` the same SQL
    relation is built directly, each DataFrame argument a named subquery."""
    from pyspark.sql.connect import plan
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from pipelines.catalog.pyspark_compat import lazy_aggregations

    class NoServer(ConnectSession):
        def __init__(self):  # no connection: any round trip fails
            pass

        @property
        def client(self):
            raise RuntimeError("round trip")

    session = NoServer()
    upstream = DataFrame(plan.Read("orders"), session=session)
    with lazy_aggregations():
        df = session.sql("SELECT country, sum(amount) FROM {orders} GROUP BY country", orders=upstream)
    assert isinstance(df._plan, plan.SQL)
    [view] = df._plan._references
    assert df._plan._query == f"SELECT country, sum(amount) FROM {view._alias} GROUP BY country"
    assert view._alias.startswith("_pyspark_connect_temp_view_") and view._child is upstream._plan
    with pytest.raises(RuntimeError, match="round trip"):
        session.sql("SELECT 1")  # outside a query function: Spark's own path
