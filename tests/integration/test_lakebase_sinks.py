"""Lakebase sinks against a real PostgreSQL (embedded, unix socket only): each mode, idempotent reruns,
a failed write leaving the target exactly as before, concurrent writers, schema changes, the types,
and the engine end to end with `LDP_LAKEBASE_DSN` pointing at the server."""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from pyspark.sql import functions as F

from pipelines.lakebase.connection import DSN_ENV, without_secrets
from pipelines.lakebase.sink import SinkError, write
from tests.conftest import write_project
from tests.integration.conftest import rows


def people(spark, data: list[tuple[int, str, float]]):
    return spark.createDataFrame(data, "id bigint, name string, score double")


def test_replace_is_idempotent_and_a_materialized_view_over_the_target_keeps_working(spark, lakebase):
    df = people(spark, [(1, "ana", 1.5), (2, "bo", 2.5)])
    assert write(lakebase.connect, df, "sink_a", "people", "replace") == 2
    with lakebase.connect() as conn:
        conn.execute("CREATE MATERIALIZED VIEW sink_a.total AS SELECT sum(score) AS total FROM sink_a.people")
    changed = people(spark, [(1, "ana", 10.0), (3, "cy", 5.0), (4, "di", 1.0)])
    for _ in range(2):  # a rerun writes the same table
        assert write(lakebase.connect, changed, "sink_a", "people", "replace", refresh_views=("sink_a.total",)) == 3
    assert rows(lakebase, "SELECT id, name, score FROM sink_a.people ORDER BY id") == [
        (1, "ana", 10.0), (3, "cy", 5.0), (4, "di", 1.0)]
    assert rows(lakebase, "SELECT total FROM sink_a.total") == [(16.0,)]


def test_declared_views_are_created_once_refreshed_each_write_and_a_bad_one_changes_nothing(spark, lakebase):
    from pipelines.core.lakebase import MaterializedView

    top = MaterializedView(name="sink_v.top", query="SELECT id, score FROM sink_v.people ORDER BY score DESC LIMIT 1")
    write(lakebase.connect, people(spark, [(1, "ana", 1.0), (2, "bo", 2.0)]), "sink_v", "people", "replace", views=(top,))
    assert rows(lakebase, "SELECT id FROM sink_v.top") == [(2,)]
    write(lakebase.connect, people(spark, [(3, "cy", 9.0)]), "sink_v", "people", "replace", views=(top,))
    assert rows(lakebase, "SELECT id FROM sink_v.top") == [(3,)]  # refreshed in the write's transaction
    bad = MaterializedView(name="sink_v.broken", query="SELECT no_such_column FROM sink_v.people")
    with pytest.raises(SinkError, match="cannot create materialized view sink_v.broken: .*no_such_column"):
        write(lakebase.connect, people(spark, [(4, "di", 1.0)]), "sink_v", "people", "replace", views=(top, bad))
    assert rows(lakebase, "SELECT id FROM sink_v.people") == [(3,)]


def test_append_replaces_the_same_runs_rows_and_keeps_other_runs(spark, lakebase):
    df = people(spark, [(1, "ana", 1.0), (2, "bo", 2.0)])
    write(lakebase.connect, df, "sink_b", "events", "append", run_id="run-1")
    write(lakebase.connect, df, "sink_b", "events", "append", run_id="run-1")  # retried: no duplicates
    write(lakebase.connect, df, "sink_b", "events", "append", run_id="run-2")
    assert rows(lakebase, "SELECT _ldp_run_id, count(*) FROM sink_b.events GROUP BY 1 ORDER BY 1") == [
        ("run-1", 2), ("run-2", 2)]


def test_upsert_updates_by_primary_key_and_inserts_new_keys(spark, lakebase):
    write(lakebase.connect, people(spark, [(1, "ana", 1.0), (2, "bo", 2.0)]), "sink_c", "people", "upsert",
          primary_key=("id",))
    write(lakebase.connect, people(spark, [(2, "bob", 20.0), (3, "cy", 3.0)]), "sink_c", "people", "upsert",
          primary_key=("id",))
    assert rows(lakebase, "SELECT id, name, score FROM sink_c.people ORDER BY id") == [
        (1, "ana", 1.0), (2, "bob", 20.0), (3, "cy", 3.0)]


def test_a_row_the_target_rejects_leaves_the_target_exactly_as_before(spark, lakebase):
    write(lakebase.connect, people(spark, [(1, "ana", 1.0)]), "sink_d", "people", "upsert", primary_key=("id",))
    with lakebase.connect() as conn:
        conn.execute("ALTER TABLE sink_d.people ADD CONSTRAINT positive CHECK (score > 0)")
    bad = people(spark, [(5, "eve", 5.0), (6, "fay", -1.0)])
    for mode, key in (("replace", ()), ("append", ()), ("upsert", ("id",))):
        with pytest.raises(psycopg.errors.CheckViolation):
            write(lakebase.connect, bad, "sink_d", "people", mode, primary_key=key, run_id="r")
        assert rows(lakebase, "SELECT id, name, score FROM sink_d.people") == [(1, "ana", 1.0)], mode
    assert [c for (c,) in rows(lakebase, "SELECT column_name FROM information_schema.columns WHERE "
                                         "table_schema = 'sink_d' ORDER BY ordinal_position")] == [
        "id", "name", "score"]  # the append's new _ldp_run_id column was rolled back too


def test_a_connection_killed_during_copy_leaves_the_target_as_before(spark, lakebase):
    write(lakebase.connect, people(spark, [(1, "ana", 1.0)]), "sink_e", "people", "replace")
    big = spark.range(200_000).selectExpr("id", "CAST(id AS STRING) AS name", "CAST(id AS DOUBLE) AS score")
    killed = threading.Event()

    def kill(pid: int) -> None:
        with psycopg.connect(lakebase.conninfo(), autocommit=True) as admin:  # sees pg_stat_activity live
            for _ in range(500):
                active = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
                if active and active[0].startswith("COPY"):
                    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                    killed.set()
                    return
                threading.Event().wait(0.01)

    @contextlib.contextmanager
    def connect():
        with lakebase.connect() as conn:
            threading.Thread(target=kill, args=(conn.info.backend_pid,), daemon=True).start()
            yield conn

    with pytest.raises(psycopg.OperationalError):
        write(connect, big, "sink_e", "people", "replace")
    assert killed.is_set()
    assert rows(lakebase, "SELECT id, name, score FROM sink_e.people") == [(1, "ana", 1.0)]


def test_two_concurrent_writers_to_one_target_are_serialized(spark, lakebase):
    first = spark.range(20_000).selectExpr("id", "'first' AS name", "1.0 AS score")
    second = spark.range(30_000).selectExpr("id", "'second' AS name", "2.0 AS score")
    errors: list[BaseException] = []

    def run(df):
        try:
            write(lakebase.connect, df, "sink_f", "people", "replace")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(df,)) for df in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows(lakebase, "SELECT name, count(*) FROM sink_f.people GROUP BY name") in (
        [("first", 20_000)], [("second", 30_000)])  # one whole write, never a mix


def test_writers_to_several_targets_of_a_new_schema_at_once_all_succeed(spark, lakebase):
    """Tables finishing together (the Spark runner's workers, replay's threads) each create the schema
    their sink targets: concurrent `CREATE SCHEMA IF NOT EXISTS` made all but one fail. Several rounds,
    as the collision is a race."""
    frames = {f"t{i}": spark.range(10 * (i + 1)).selectExpr("id", f"'t{i}' AS name", "1.0 AS score")
              for i in range(4)}
    errors: list[BaseException] = []

    def run(schema: str, table: str, at_once: threading.Barrier) -> None:
        at_once.wait()
        try:
            write(lakebase.connect, frames[table], schema, table, "replace")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    schemas = [f"sink_new_schema_{n}" for n in range(5)]
    for schema in schemas:
        at_once = threading.Barrier(len(frames))
        threads = [threading.Thread(target=run, args=(schema, table, at_once)) for table in frames]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert [[rows(lakebase, f"SELECT count(*) FROM {s}.{t}")[0][0] for t in frames] for s in schemas] == (
        [[10, 20, 30, 40]] * len(schemas))


def test_a_new_column_is_added_and_an_incompatible_change_fails_leaving_the_target(spark, lakebase):
    write(lakebase.connect, people(spark, [(1, "ana", 1.0)]), "sink_g", "people", "replace")
    wider = spark.createDataFrame([(2, "bo", 2.0, True)], "id bigint, name string, score double, vip boolean")
    write(lakebase.connect, wider, "sink_g", "people", "replace")
    assert rows(lakebase, "SELECT id, name, score, vip FROM sink_g.people") == [(2, "bo", 2.0, True)]
    retyped = spark.createDataFrame([(3, "cy", "high")], "id bigint, name string, score string")
    with pytest.raises(SinkError, match="score is double precision, the table now has text"):
        write(lakebase.connect, retyped, "sink_g", "people", "replace")
    assert rows(lakebase, "SELECT id, name, score, vip FROM sink_g.people") == [(2, "bo", 2.0, True)]


def test_spark_types_map_to_postgresql_types(spark, lakebase):
    df = spark.sql("""SELECT 1L AS id, CAST(12.34 AS DECIMAL(12,2)) AS amount, TIMESTAMP'2026-11-01 10:00:00' AS ts,
                      DATE'2026-11-02' AS day, true AS flag, CAST('ab' AS BINARY) AS raw, array(1, 2) AS list,
                      map('k', 1) AS dict, named_struct('x', 1, 'y', 'z') AS nested""")
    write(lakebase.connect, df, "sink_h", "typed", "replace")
    types = dict(rows(lakebase, "SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_schema = 'sink_h' AND table_name = 'typed'"))
    assert types == {"id": "bigint", "amount": "numeric", "ts": "timestamp with time zone", "day": "date",
                     "flag": "boolean", "raw": "bytea", "list": "jsonb", "dict": "jsonb", "nested": "jsonb"}
    [row] = rows(lakebase, "SELECT amount::text, ts AT TIME ZONE 'UTC', day::text, raw, list, dict, nested "
                           "FROM sink_h.typed")
    assert row[0] == "12.34" and str(row[1]) == "2026-11-01 10:00:00" and row[2] == "2026-11-02"
    assert (bytes(row[3]), row[4], row[5], row[6]) == (b"ab", [1, 2], {"k": 1}, {"x": 1, "y": "z"})


def test_binary_and_csv_encodings_store_the_same_values_nulls_and_edge_cases_included(spark, lakebase):
    """Binary COPY unless a decimal column sends the table as CSV: both must store exactly the same."""
    df = spark.sql("""SELECT * FROM VALUES
        (CAST(1 AS TINYINT), CAST(-2 AS SMALLINT), 2147483647, -9223372036854775808L, CAST(1.5 AS FLOAT), 1e300,
         'héllo, "world"\n', true, CAST('\u0000b' AS BINARY), array(1, null), map('k', named_struct('x', 'y')),
         TIMESTAMP'1969-12-31 23:59:59.999999', TIMESTAMP_NTZ'2026-11-01 10:00:00.5', DATE'1999-12-31'),
        (null, null, null, null, null, CAST('NaN' AS DOUBLE), '', false, CAST('' AS BINARY), array(), map(),
         null, null, null),
        (CAST(0 AS TINYINT), CAST(0 AS SMALLINT), 0, 0L, CAST('-Infinity' AS FLOAT), -0.0, null, null, null, null, null,
         TIMESTAMP'2000-01-01 00:00:00', TIMESTAMP_NTZ'1900-01-01 00:00:00', DATE'2000-01-01')
        AS t(i1, i2, i4, i8, f4, f8, s, b, raw, list, dict, ts, ntz, day)""").withColumn("n", F.monotonically_increasing_id())
    write(lakebase.connect, df, "sink_enc", "binary", "replace")
    write(lakebase.connect, df.withColumn("amount", F.lit(1).cast("decimal(10,2)")), "sink_enc", "csv", "replace")
    columns = ", ".join(df.columns)
    binary = rows(lakebase, f"SELECT {columns} FROM sink_enc.binary ORDER BY n")
    assert repr(binary) == repr(rows(lakebase, f"SELECT {columns} FROM sink_enc.csv ORDER BY n"))  # NaN included
    assert binary[0][6] == 'héllo, "world"\n' and bytes(binary[0][8]) == b"\x00b" and binary[0][9] == [1, None]
    assert binary[1][6] == "" and binary[1][9] == [] and binary[2][6] is None and binary[2][9] is None


def test_no_secret_in_a_described_connection():
    assert "hunter2" not in without_secrets("postgresql://ana:hunter2@db.example.com:5432/app?sslmode=require")


CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}
  - name: totals
    layer: gold
    depends_on: [raw]
    sinks:
      - {type: lakebase, schema: SCHEMA_app, mode: replace}
      - {type: lakebase, schema: SCHEMA_app, table: totals_by_key, mode: upsert, primary_key: [k]}
"""


def test_databricks_logins_share_a_pool_and_each_gets_a_fresh_token_never_logged(lakebase, tmp_path, monkeypatch,
                                                                                  caplog):
    """The instance form end to end, against the embedded server standing in for the instance's host."""
    import logging
    from unittest.mock import create_autospec

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.database import DatabaseAPI, DatabaseCredential, DatabaseInstance
    from databricks.sdk.service.iam import CurrentUserAPI, User

    from pipelines.core.lakebase import LakebaseSettings
    from pipelines.lakebase.connection import Lakebase

    with lakebase.connect() as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE \"ana@example.com\" LOGIN SUPERUSER; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    with psycopg.connect(lakebase.conninfo(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'databricks_postgres'").fetchone():
            conn.execute("CREATE DATABASE databricks_postgres")
    w = create_autospec(WorkspaceClient, instance=True)
    w.current_user = create_autospec(CurrentUserAPI, instance=True)
    w.current_user.me.return_value = User(user_name="ana@example.com")
    w.database = create_autospec(DatabaseAPI, instance=True)
    socket_folder = psycopg.conninfo.conninfo_to_dict(lakebase.conninfo())["host"]
    w.database.get_database_instance.return_value = DatabaseInstance(name="shop", read_write_dns=socket_folder)
    minted = iter(f"secret-token-{i}" for i in range(100))
    w.database.generate_database_credential.side_effect = lambda **kw: DatabaseCredential(token=next(minted))
    monkeypatch.delenv(DSN_ENV, raising=False)
    caplog.set_level(logging.DEBUG)
    with Lakebase(LakebaseSettings(instance="shop"), tmp_path, workspace=lambda: w) as server:
        for _ in range(5):  # a run's short transactions
            with server.connect() as conn:
                assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                    "ana@example.com", "databricks_postgres")
        calls = w.database.generate_database_credential.call_count
        assert calls == 2  # the first login's check, then one pooled connection reused five times
        holders = [server.connect() for _ in range(3)]
        opened = [h.__enter__() for h in holders]  # three at once: two more logins, two more tokens
        assert len({c.info.backend_pid for c in opened}) == 3
        for holder in holders:
            holder.__exit__(None, None, None)
        assert w.database.generate_database_credential.call_count == 4
    assert "secret-token" not in caplog.text + server.describe()


def test_the_engine_writes_each_tables_sinks_and_reports_them(spark, lakebase, tmp_path, monkeypatch):
    from pipelines.engine.cli import cli

    schema = f"s{abs(hash(tmp_path)) % 10**6}"
    write_project(tmp_path, CONFIG.replace("SCHEMA", schema), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "gold/totals.py": "def totals(raw):\n    return raw.groupBy('k').sum('v').withColumnRenamed('sum(v)', 'v')\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\na,2\nb,5\n")
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    result = CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "config.yml"), "--format", "json",
                                      "--state-dir", str(tmp_path / ".ldp")])
    summary = json.loads(result.stdout)
    assert result.exit_code == 0, summary
    [totals] = [t for t in summary["tables"] if t["name"] == "totals"]
    assert totals["sinks"] == [
        {"type": "lakebase", "target": f"{schema}_app.totals", "mode": "replace", "rows": 2, "status": "success",
         "error": None},
        {"type": "lakebase", "target": f"{schema}_app.totals_by_key", "mode": "upsert", "rows": 2,
         "status": "success", "error": None}]
    assert rows(lakebase, f"SELECT k, v FROM {schema}_app.totals_by_key ORDER BY k") == [("a", 3), ("b", 5)]
    assert not Path(tmp_path / ".ldp/lakebase").exists()  # the DSN won: no embedded server was started


def test_sinks_publish_with_the_bundle_tasks_parameters_writes_the_stored_tables_sinks(spark, lakebase, tmp_path,
                                                                                        monkeypatch):
    """The job's `sinks` task after a pipeline update: its parameters as Databricks fills them in."""
    import yaml

    from pipelines.engine.cli import cli

    schema = f"p{abs(hash(tmp_path)) % 10**6}"
    write_project(tmp_path, (CONFIG.replace("SCHEMA", schema) + "lakebase: {meta_schema: SCHEMA_meta, inventory: true}\n"
                             + "variables: {env_name: local}\n").replace("SCHEMA", schema).replace("    layer: gold\n", "    layer: gold\n    tags: [daily]\n"), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "gold/totals.py": "def totals(raw):\n    return raw.groupBy('k').sum('v').withColumnRenamed('sum(v)', 'v')\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\na,2\nb,5\n")
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    state = ["--state-dir", str(tmp_path / ".ldp")]
    assert CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "config.yml"), *state]).exit_code == 0
    with lakebase.connect() as conn:  # as if a pipeline update had written the tables, and no sink
        conn.execute(f"DROP SCHEMA {schema}_app CASCADE")
    job = yaml.safe_load((Path(__file__).parents[2] / "workflows/daily_job.yml").read_text())
    [task] = [t for t in job["resources"]["jobs"]["ldp_daily"]["tasks"] if t["task_key"] == "sinks"]
    filled = {"{{job.parameters.tags}}": "daily", "{{job.parameters.mode}}": "batch", "${var.catalog}": "main", "${var.schema}": schema,
              "{{job.run_id}}": "job-run-7", "${workspace.file_path}/config.yml": str(tmp_path / "config.yml"),
              "env_name=${bundle.target}": "env_name=staging"}
    args = [filled.get(a, a) for a in task["python_wheel_task"]["parameters"]]
    for _ in range(2):  # a retried task rewrites the same targets
        result = CliRunner().invoke(cli, [*args, *state])
        assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["runner"], [t["name"] for t in summary["tables"]]) == ("sinks", ["totals"])
    assert [(s["target"], s["rows"], s["status"]) for s in summary["tables"][0]["sinks"]] == [
        (f"{schema}_app.totals", 2, "success"), (f"{schema}_app.totals_by_key", 2, "success")]
    assert rows(lakebase, f"SELECT k, v FROM {schema}_app.totals ORDER BY k") == [("a", 3), ("b", 5)]
    assert rows(lakebase, f"SELECT run_id, target FROM {schema}_meta.sink_runs WHERE run_id = 'job-run-7' "
                          "ORDER BY 2") == [("job-run-7", f"{schema}_app.totals"),
                                            ("job-run-7", f"{schema}_app.totals_by_key")]
    missing = CliRunner().invoke(cli, [*args, *state, "--schema", f"{schema}_nowhere", "--format", "text"])
    assert missing.exit_code == 3 and f"`{schema}_nowhere`.`totals` does not exist: run the pipeline first" \
        in missing.stdout


def test_lakebase_status_says_where_and_checks_the_connection_without_a_secret(lakebase, monkeypatch):
    from pipelines.engine.cli import cli

    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    result = CliRunner().invoke(cli, ["lakebase", "status", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["server_version"].startswith("18")
    monkeypatch.setenv(DSN_ENV, "postgresql://ana:hunter2@127.0.0.1:1/app?connect_timeout=2")
    result = CliRunner().invoke(cli, ["lakebase", "status"])
    assert result.exit_code == 3 and "cannot connect (dsn: host=127.0.0.1 port=1" in result.output
    assert "hunter2" not in result.output


def test_lakebase_query_prints_rows_and_a_bad_statement_is_a_usage_error(lakebase, monkeypatch):
    from pipelines.engine.cli import cli

    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    result = CliRunner().invoke(cli, ["lakebase", "query", "SELECT 1 AS one, 'x' AS two", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"columns": ["one", "two"],
                                                                   "rows": [{"one": 1, "two": "x"}]}
    result = CliRunner().invoke(cli, ["lakebase", "query", "SELECT * FROM no_such_table"])
    assert result.exit_code == 2 and 'relation "no_such_table" does not exist' in result.output


INVENTORY = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
lakebase: {inventory: true, meta_schema: SCHEMA_meta}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}
    expectations:
      - {name: v_positive, criticality: warn, check: {function: sql_expression, arguments: {expression: "v > 1"}}}
    sinks: [{type: lakebase, schema: SCHEMA_app, mode: append}]
  - {name: broken, layer: silver, depends_on: [raw]}
  - {name: after, layer: gold, depends_on: [broken]}
"""


def inventory_project(tmp_path: Path) -> tuple[Path, str]:
    schema = f"i{abs(hash(tmp_path)) % 10**6}"
    write_project(tmp_path, INVENTORY.replace("SCHEMA", schema), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "silver/broken.py": "def broken(raw):\n    raise ValueError('boom')\n",
        "gold/after.py": "def after(broken):\n    return broken\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\nb,5\n")
    return tmp_path / "config.yml", schema


def test_the_inventory_records_succeeded_failed_and_skipped_tables_checks_and_sinks(spark, lakebase, tmp_path,
                                                                                     monkeypatch):
    from pipelines.engine.cli import cli

    config, schema = inventory_project(tmp_path)
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    monkeypatch.setenv("LDP_RUN_ID", f"job-run-{schema}")  # a retried job run keeps its id
    args = ["--config", str(config), "--state-dir", str(tmp_path / ".ldp")]
    for _ in range(2):
        result = CliRunner().invoke(cli, ["run", *args, "--format", "json"])
        assert result.exit_code == 3, result.output
    listed = json.loads(CliRunner().invoke(cli, ["runs", "list", *args, "--format", "json"]).stdout)["runs"]
    assert [(r["run_id"], r["status"], r["tables"]) for r in listed if r["pipeline"] == "ldp_pipeline"][:1] == [
        (f"job-run-{schema}", "failed", 3)]
    shown = json.loads(CliRunner().invoke(cli, ["runs", "show", f"job-run-{schema}", *args, "--format", "json"]).stdout)
    assert {t["table_name"]: t["status"] for t in shown["table_runs"]} == {
        "raw": "success", "broken": "failed", "after": "skipped"}
    assert "ValueError: boom" in next(t["error"] for t in shown["table_runs"] if t["table_name"] == "broken")
    assert [(c["check_name"], c["failed"]) for c in shown["check_results"]] == [("v_positive", 1)]
    assert [(s["target"], s["mode"], s["rows"], s["status"]) for s in shown["sink_runs"]] == [
        (f"{schema}_app.raw", "append", 2, "success")]
    # the retried run replaced its own rows: once in the inventory, once in the appended sink
    assert rows(lakebase, f"SELECT count(*) FROM {schema}_meta.table_runs WHERE run_id = 'job-run-{schema}'") == [(3,)]
    assert rows(lakebase, f"SELECT count(*) FROM {schema}_app.raw") == [(2,)]
    assert rows(lakebase, f"SELECT last_run_status, rows FROM {schema}_meta.sink_state") == [("success", 2)]
    missing = CliRunner().invoke(cli, ["runs", "show", "nope", *args])
    assert missing.exit_code == 2 and "no such run in the inventory" in missing.output


def test_an_inventory_that_cannot_be_written_changes_nothing_but_the_summary(spark, tmp_path, monkeypatch):
    from pipelines.engine.cli import cli

    config, schema = inventory_project(tmp_path)
    config.write_text(config.read_text().replace(f"    sinks: [{{type: lakebase, schema: {schema}_app, mode: append}}]\n", ""))
    (tmp_path / "transformations/silver/broken.py").write_text("def broken(raw):\n    return raw\n")
    monkeypatch.setenv(DSN_ENV, "postgresql://ana:hunter2@127.0.0.1:1/app?connect_timeout=2")
    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--state-dir", str(tmp_path / ".ldp"),
                                      "--format", "json"])
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["status"] == "success", summary
    assert summary["inventory"].startswith("failed: OperationalError") and "hunter2" not in result.output


def test_lakebase_serve_keeps_the_embedded_server_up_for_psql_until_ctrl_c(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != DSN_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.ldp_engine", "lakebase", "serve", "--config",
         str(Path(__file__).parents[2] / "config.yml"), "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("embedded: host=") and lines[1].startswith("connect with: psql "), lines
        conninfo = lines[1].strip().removeprefix("connect with: psql ").strip('"')
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(conninfo, connect_timeout=2)
