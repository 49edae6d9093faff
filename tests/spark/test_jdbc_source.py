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


def incremental_config(address: str, partitioned: bool = False, lookback: str = "") -> str:
    parts = ", partition_column: id, lower_bound: 1, upper_bound: 40, num_partitions: 3" if partitioned else ""
    parts += f", lookback: {lookback}" if lookback else ""
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: new_orders
    layer: bronze
    source: {{type: jdbc, url: 'jdbc:postgresql://{address}/postgres', table: public.shop_orders,
             user: postgres, password_env: SHOP_PASSWORD, incremental_column: id{parts}}}
    expectations:
      - {{name: positive_amount, criticality: error, check: {{function: sql_expression,
          arguments: {{expression: "amount > 0"}}}}}}
  - name: customer_totals
    layer: silver
    depends_on: [new_orders]
"""


INCREMENTAL_MODULES = {
    "bronze/new_orders.py": "def new_orders(source):\n    return source\n",
    "silver/customer_totals.py": ("def customer_totals(new_orders):\n"
                                  "    return new_orders.groupBy('customer').agg({'amount': 'sum'}).withColumnRenamed('sum(amount)', 'amount')\n")}


def landed_per_commit(spark, harness: Harness, table: str) -> list[int]:
    """The rows each append to a table's landing table took from the database, oldest first."""
    history = spark.sql(f"DESCRIBE HISTORY {harness.schema}.{table}__ldp_landing").orderBy("version").collect()
    return [int(commit.operationMetrics.get("numOutputRows", 0)) for commit in history]


@pytest.mark.parametrize("mode, partitioned", [("streaming", False), ("batch", True)])
def test_an_incremental_read_lands_only_the_rows_above_the_last_runs_mark_over_three_runs(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch, mode, partitioned):
    """Each run lands only the rows whose `id` is above the largest landed so far (the database filters
    them: each landing commit holds just those), and the table holds every row once: a streaming table
    appends the new ones, a batch run recomputes from all the landed rows. A failing row is quarantined
    once; a run with nothing new lands nothing (no commit) and changes nothing."""
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, INCREMENTAL_MODULES, config=incremental_config(tcp_postgres, partitioned))
    assert [t.streaming for t in load_project(harness.path, mode=mode).plan.tables] == [mode == "streaming", False]
    inserts = ["", "(41, 'c9', 205), (42, 'c9', -1)", "(43, 'c1', 7)", ""]
    for run, values in enumerate(inserts):
        if values:
            shop_orders.execute(f"INSERT INTO public.shop_orders VALUES {values}")
        tables, result = harness.run(mode=mode)
        assert result.status == "success", [t.error for t in tables.values()]
        stored = sorted(tuple(r) for r in shop_orders.execute("SELECT id, customer, amount FROM public.shop_orders"))
        assert [r[:3] for r in rows(harness, "new_orders")] == [r for r in stored if r[2] > 0]
        assert [r[:3] for r in rows(harness, "new_orders_quarantine")] == ([(42, "c9", -1)] if run else [])
        assert landed_per_commit(spark, harness, "new_orders") == [40, 2, 1][:run + 1]  # nothing new: no commit
        assert tables["new_orders"].landed == {"new_orders": [40, 2, 1, 0][run]}  # in the run's summary too
        new = [40, 1, 1, 0][run] if mode == "streaming" else len([r for r in stored if r[2] > 0])
        assert tables["new_orders"].rows_written == new
        assert rows(harness, "customer_totals") == sorted(
            (c, sum(a for _, cust, a in stored if cust == c and a > 0)) for c in {r[1] for r in stored})


def test_a_lookback_lands_a_late_row_below_the_mark_once_and_nothing_twice(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    """A row committed late, below the mark (38 after 40 was landed), is landed by the next run that
    reads `lookback` below the mark; the rows in that window landed before are not landed again, so the
    streaming table holds every row once."""
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, INCREMENTAL_MODULES, config=incremental_config(tcp_postgres, lookback="5"))
    shop_orders.execute("DELETE FROM public.shop_orders WHERE id = 38")  # not committed yet at the first run
    for run, landed in enumerate([39, 2, 0]):
        if run == 1:
            shop_orders.execute("INSERT INTO public.shop_orders VALUES (38, 'c2', 190), (41, 'c9', 205)")
        tables, result = harness.run(mode="streaming")
        assert result.status == "success", [t.error for t in tables.values()]
        assert tables["new_orders"].landed == {"new_orders": landed}
        stored = sorted(tuple(r) for r in shop_orders.execute("SELECT id, customer, amount FROM public.shop_orders"))
        assert [r[:3] for r in rows(harness, "new_orders")] == stored  # each row once
    assert landed_per_commit(spark, harness, "new_orders") == [39, 2]  # the window's other rows not again

    harness.path.write_text(incremental_config(tcp_postgres, lookback="'15 minutes'").replace("SCHEMA", harness.schema))
    tables, _ = harness.run(mode="streaming")  # a span below a numeric cursor: the table fails, saying so
    assert "key 'source.lookback'" in tables["new_orders"].error and \
        "a lookback of '15 minutes' cannot be taken from the mark 41 of id" in tables["new_orders"].error


def test_a_timestamp_cursor_lands_updated_rows_again_and_cdc_keeps_the_latest_per_key(
        spark, tmp_path, tcp_postgres, monkeypatch):
    """An `updated_at` cursor: a row updated since the last run lands again, as a new row, and a `cdc:`
    table sequenced by the same column keeps one row per key, the latest."""
    import psycopg

    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    text = f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: customers_now
    layer: silver
    source: {{type: jdbc, url: 'jdbc:postgresql://{tcp_postgres}/postgres', table: public.crm_customers,
             user: postgres, password_env: SHOP_PASSWORD, incremental_column: updated_at}}
    cdc: {{keys: [id], sequence_by: updated_at}}
"""
    harness = Harness(spark, tmp_path, {}, config=text)
    with psycopg.connect(f"postgresql://postgres@{tcp_postgres}/postgres", autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS public.crm_customers")
        db.execute("CREATE TABLE public.crm_customers (id int PRIMARY KEY, name text, updated_at timestamp)")
        db.execute("INSERT INTO public.crm_customers VALUES (1, 'ann', '2026-01-01 10:00:00.000001'), "
                   "(2, 'bob', '2026-01-01 10:00:00.000002'), (3, 'cy', '2026-01-01 10:00:00.000003')")
        try:
            for run in range(2):
                tables, result = harness.run(mode="streaming")
                assert result.status == "success", [t.error for t in tables.values()]
                db.execute("UPDATE public.crm_customers SET name = 'bobby', updated_at = '2026-01-02 08:00:00' "
                           "WHERE id = 2")
                db.execute("INSERT INTO public.crm_customers VALUES (4, 'dee', '2026-01-02 09:00:00') "
                           "ON CONFLICT DO NOTHING")
            landed = harness.spark.table(f"{harness.schema}.customers_now__ldp_landing")
            assert sorted((r.id, r.name) for r in landed.collect()) == [
                (1, "ann"), (2, "bob"), (2, "bobby"), (3, "cy"), (4, "dee")]  # bob's update landed again
            assert sorted((r.id, r.name) for r in harness.table("customers_now").collect()) == [
                (1, "ann"), (2, "bobby"), (3, "cy"), (4, "dee")]
            assert tables["customers_now"].changes == {"upserts": 2, "deletes": 0}
        finally:
            db.execute("DROP TABLE public.crm_customers")


def test_an_incremental_column_the_database_lacks_fails_the_table_naming_it(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, INCREMENTAL_MODULES,
                      config=incremental_config(tcp_postgres).replace("incremental_column: id", "incremental_column: seq"))
    tables, result = harness.run(mode="streaming")
    assert result.status == "failed"
    assert "the incremental_column 'seq' is not a column of public.shop_orders from jdbc:postgresql://" \
        in tables["new_orders"].error and "(its columns: id, customer, amount)" in tables["new_orders"].error
    assert not spark.catalog.tableExists(f"{harness.schema}.new_orders__ldp_landing")


def test_databricks_registers_an_incremental_read_as_a_streaming_table_of_its_landed_rows(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    """The pipeline's query reads the landing table (what the job's `land` task wrote), not the
    database: as a stream in streaming mode, whole in batch mode."""
    from pyspark.pipelines.output import MaterializedView, StreamingTable

    from tests.spark.test_registrar import register

    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, INCREMENTAL_MODULES, config=incremental_config(tcp_postgres))
    harness.run(mode="streaming")  # lands the 40 rows
    shop_orders.execute("INSERT INTO public.shop_orders VALUES (41, 'c9', 205)")  # not landed yet
    previous = spark.catalog.currentDatabase()
    spark.catalog.setCurrentDatabase(harness.schema)  # where a pipeline's unqualified names resolve
    try:
        for mode, kind in (("streaming", StreamingTable), ("batch", MaterializedView)):
            _, registry = register(spark, harness.path, mode=mode)
            assert type(registry.outputs["new_orders"]) is kind
            query = registry.flows["new_orders__checked"].func()
            assert query.isStreaming is (mode == "streaming")
            if mode == "batch":
                assert query.count() == 40
    finally:
        spark.catalog.setCurrentDatabase(previous)


def test_the_land_command_lands_outside_a_run_and_an_unreachable_database_exits_3_naming_it(
        spark, tmp_path, tcp_postgres, shop_orders, monkeypatch):
    """`ldp_engine land` (the Databricks job's task before the pipeline update) lands what a run would,
    and the run after it then finds nothing more to land but reads what was landed."""
    from click.testing import CliRunner

    from pipelines.engine.cli import cli
    from pipelines.ldp.sdp_process import free_port

    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    harness = Harness(spark, tmp_path, INCREMENTAL_MODULES, config=incremental_config(tcp_postgres))

    def land(config_path) -> tuple[int, dict]:
        done = CliRunner().invoke(cli, ["land", "--config", str(config_path), "--format", "json",
                                        "--state-dir", str(tmp_path / ".ldp")])
        return done.exit_code, json.loads(done.stdout)

    landing = f"{harness.schema}.new_orders__ldp_landing"
    assert land(harness.path) == (0, {"landed": [{"table": "new_orders", "landing": landing, "since": None,
                                                  "mark": 40, "rows": 40}], "errors": {}})
    shop_orders.execute("INSERT INTO public.shop_orders VALUES (41, 'c9', 205)")
    assert land(harness.path)[1]["landed"][0] | {"landing": None} == {"table": "new_orders", "landing": None,
                                                                       "since": 40, "mark": 41, "rows": 1}
    tables, _ = harness.run(mode="streaming")
    assert tables["new_orders"].rows_written == 41 and landed_per_commit(spark, harness, "new_orders") == [40, 1]
    assert tables["new_orders"].landed == {"new_orders": 0}

    closed = harness.path.with_name("closed.yml")  # beside config.yml: the same transformations
    closed.write_text(harness.path.read_text().replace(tcp_postgres, f"127.0.0.1:{free_port()}"))
    code, out = land(closed)
    assert code == 3 and out["landed"] == [] and "could not read public.shop_orders from jdbc:postgresql://127.0.0.1:" \
        in out["errors"]["new_orders"]
    assert PASSWORD not in json.dumps(out)


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
