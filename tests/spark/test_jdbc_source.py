"""A database read over JDBC (`type: jdbc`) from a real PostgreSQL on 127.0.0.1, with the driver Spark
fetched from Maven Central (pytest.ini's `ldp_spark_packages`): a whole table, a query, and a
partitioned read, re-read whole each run; a database that can't be reached or a password that is not
set fails the table naming the URL, never the password."""
from __future__ import annotations

import json

import pytest

from pipelines.catalog.sources import read_source
from pipelines.core.sources import JdbcSource
from pipelines.engine.project import load_project
from tests.spark.harness import Harness

PASSWORD = "s3cret-Pa55"  # initdb's trust login accepts any: the point is where it may show up
MODULES = {"bronze/orders_full.py": "def orders_full(source):\n    return source\n",
           "bronze/orders_parts.py": "def orders_parts(source):\n    return source\n",
           "bronze/big_orders.py": "def big_orders(source):\n    return source\n"}


def config(address: str) -> str:
    url = f"jdbc:postgresql://{address}/postgres"
    login = "user: postgres, password_env: SHOP_PASSWORD"
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: orders_full
    layer: bronze
    source: {{type: jdbc, url: '{url}', table: public.shop_orders, {login}, fetchsize: 7}}
  - name: orders_parts
    layer: bronze
    source: {{type: jdbc, url: '{url}', table: public.shop_orders, {login},
             partition_column: id, lower_bound: 1, upper_bound: 40, num_partitions: 4}}
  - name: big_orders
    layer: bronze
    source: {{type: jdbc, url: '{url}', query: 'SELECT id, amount FROM public.shop_orders WHERE amount >= 100',
             {login}}}
"""


def rows(harness: Harness, name: str) -> list[tuple]:
    return sorted(tuple(r) for r in harness.table(name).collect())


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_a_table_a_query_and_a_partitioned_read_hold_the_databases_rows_run_after_run(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch, mode):
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, MODULES, config=config(tcp_postgres))
    assert not any(t.streaming for t in load_project(harness.path, mode=mode).plan.tables)  # a batch source
    expected = sorted(tuple(r) for r in shop_orders.execute("SELECT id, customer, amount FROM public.shop_orders"))
    for added in (0, 2):  # a rerun re-reads the whole table: rows added meanwhile are there, none twice
        tables, result = harness.run(mode=mode)
        assert result.status == "success", [t.error for t in tables.values()]
        assert rows(harness, "orders_full") == rows(harness, "orders_parts") == expected
        assert rows(harness, "big_orders") == [(i, a) for i, _, a in expected if a >= 100]
        assert tables["orders_full"].rows_written == 40 + added
        shop_orders.execute(f"INSERT INTO public.shop_orders VALUES ({41 + added}, 'c9', 205), ({42 + added}, 'c9', 1)")
        expected = sorted(tuple(r) for r in shop_orders.execute("SELECT id, customer, amount FROM public.shop_orders"))


def test_a_partitioned_read_runs_one_query_per_stride(spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    source = JdbcSource(type="jdbc", url=f"jdbc:postgresql://{tcp_postgres}/postgres", table="public.shop_orders",
                        user="postgres", password_env="SHOP_PASSWORD", partition_column="id", lower_bound=1,
                        upper_bound=40, num_partitions=4)
    parts = read_source(spark, source, tmp_path, streaming=False)
    assert parts.rdd.getNumPartitions() == 4  # the test may count partitions; the engine never uses RDDs
    assert parts.count() == 40


def test_an_unreachable_database_or_an_unset_password_fails_the_table_naming_the_url_not_the_password(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    from pipelines.ldp.sdp_process import free_port

    closed = f"127.0.0.1:{free_port()}"
    harness = Harness(spark, tmp_path, MODULES, config=config(closed))
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    tables, result = harness.run()
    assert result.status == "failed"
    error = tables["orders_full"].error
    assert f"could not read public.shop_orders from jdbc:postgresql://{closed}/postgres" in error
    assert "Connection to" in error and "refused" in error, error  # the driver's own reason
    assert all(PASSWORD not in (t.error or "") for t in tables.values())

    monkeypatch.delenv("SHOP_PASSWORD")
    (tmp_path / "unset").mkdir()
    harness = Harness(spark, tmp_path / "unset", MODULES, config=config(tcp_postgres))
    tables, _ = harness.run()
    assert "the password of jdbc:postgresql" in tables["orders_full"].error
    assert "key 'source.password_env'" in tables["orders_full"].error and "set the environment variable SHOP_PASSWORD" \
        in tables["orders_full"].error


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_databricks_registers_materialized_views_whose_queries_read_the_database(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch, mode):
    from pyspark.pipelines.output import MaterializedView

    from tests.spark.test_registrar import register

    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, MODULES, config=config(tcp_postgres))
    _, registry = register(spark, harness.path, mode=mode)
    assert {name: type(output) for name, output in registry.outputs.items()} == {
        name: MaterializedView for name in ("orders_full", "orders_parts", "big_orders")}
    query = registry.flows["big_orders"].func()
    assert not query.isStreaming and sorted(query.columns) == ["amount", "id"] and query.count() == 21


def test_a_secret_reference_logs_in_from_the_secrets_file_or_the_environment_and_shows_nowhere(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    """`password: ${secret.shop.password}` (with the URL's host from a variable): read from the git-ignored
    `.ldp/secrets.toml` beside config.yml, or from `LDP_SECRET_SHOP_PASSWORD`, which wins. The value (a
    canary) is in no result, record or stored file; without it, the table fails naming where to put it."""
    canary = "canary-PW-91c2e"
    text = config(tcp_postgres).replace("password_env: SHOP_PASSWORD", "password: '${secret.shop.password}'")
    text = "variables: {host: '" + tcp_postgres + "'}\n" + text.replace(tcp_postgres, "${var.host}")
    harness = Harness(spark, tmp_path, MODULES, config=text)
    (tmp_path / ".ldp").mkdir(exist_ok=True)
    (tmp_path / ".ldp/secrets.toml").write_text(f'[shop]\npassword = "{canary}"\n')
    tables, result = harness.run()
    assert result.status == "success", [t.error for t in tables.values()]
    assert harness.table("orders_full").count() == 40
    monkeypatch.setenv("LDP_SECRET_SHOP_PASSWORD", canary + "-env")
    tables, result = harness.run()
    assert result.status == "success"
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "secrets.toml"]
    assert stored and not [p for p in stored if canary.encode() in p.read_bytes()]
    assert canary not in json.dumps(result.to_dict(), default=str)

    monkeypatch.delenv("LDP_SECRET_SHOP_PASSWORD")
    (tmp_path / ".ldp/secrets.toml").unlink()
    tables, result = harness.run()
    assert result.status == "failed"
    assert "key 'source.password': the password of jdbc:postgresql://" in tables["orders_full"].error
    assert "set the environment variable LDP_SECRET_SHOP_PASSWORD or add password under [shop]" \
        in tables["orders_full"].error
