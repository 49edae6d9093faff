"""AUTO CDC on the Spark runner: a table with `cdc:` applies its change feed by key and sequence, over
several runs, as Lakeflow's documented example says (SCD type 1 and 2), with checks on the feed."""
from __future__ import annotations

from tests.spark.harness import Harness

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: user_changes
    layer: bronze
    source:
      type: files
      format: csv
      path: ./feed
      options: {header: true}
      schema: "userId INT, name STRING, city STRING, operation STRING, sequenceNum INT"
  - name: users_current
    layer: silver
    depends_on: [user_changes]
    expectations:
      - {name: user_known, criticality: error, check: {function: is_not_null, arguments: {column: userId}}}
    cdc: &cdc
      keys: [userId]
      sequence_by: sequenceNum
      apply_as_deletes: "operation = 'DELETE'"
      except_column_list: [operation, sequenceNum]
  - name: users_history
    layer: silver
    depends_on: [user_changes]
    expectations:
      - {name: user_known, criticality: error, check: {function: is_not_null, arguments: {column: userId}}}
    cdc: {<<: *cdc, stored_as_scd_type: 2}
"""
MODULES = {"bronze/user_changes.py": "def user_changes(source):\n    return source\n",
           "silver/users_current.py": "def users_current(user_changes):\n    return user_changes\n",
           "silver/users_history.py": "def users_history(user_changes):\n    return user_changes\n"}
HEADER = "userId,name,city,operation,sequenceNum\n"
FIRST = ["124,Raul,Oaxaca,INSERT,1", "123,Isabel,Monterrey,INSERT,1", "125,Mercedes,Tijuana,INSERT,2",
         "126,Lily,Cancun,INSERT,2", "125,Mercedes,Guadalajara,UPDATE,6"]
LATER = ["123,,,DELETE,6", "125,Mercedes,Mexicali,UPDATE,5",  # 125's update 5 arrives after its update 6
         "123,Isabel,Chihuahua,UPDATE,5", ",Nobody,Nowhere,INSERT,9"]  # no key: quarantined by the check


def rows(harness: Harness, name: str) -> list[tuple]:
    return sorted(tuple(row) for row in harness.table(name).collect())


def test_a_change_feed_over_two_runs_gives_ldps_documented_scd1_and_scd2_tables(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    (tmp_path / "feed").mkdir()
    (tmp_path / "feed" / "1.csv").write_text(HEADER + "\n".join(FIRST) + "\n")
    tables, result = harness.run()
    assert result.status == "success", [t.error for t in tables.values()]
    assert rows(harness, "users_current") == [(123, "Isabel", "Monterrey"), (124, "Raul", "Oaxaca"),
                                              (125, "Mercedes", "Guadalajara"), (126, "Lily", "Cancun")]

    (tmp_path / "feed" / "2.csv").write_text(HEADER + "\n".join(LATER) + "\n")
    assert tables["users_history"].changes == {"upserts": 5, "deletes": 0, "versions_opened": 5}
    for applied, opened in ((3, 2), (0, 0)):  # the second run reads no new event: nothing changes
        tables, result = harness.run()
        assert result.status == "success", [t.error for t in tables.values()]
        assert rows(harness, "users_current") == [(124, "Raul", "Oaxaca"), (125, "Mercedes", "Guadalajara"),
                                                  (126, "Lily", "Cancun")]
        assert rows(harness, "users_history") == [
            (123, "Isabel", "Chihuahua", 5, 6), (123, "Isabel", "Monterrey", 1, 5), (124, "Raul", "Oaxaca", 1, None),
            (125, "Mercedes", "Guadalajara", 6, None), (125, "Mercedes", "Mexicali", 5, 6),
            (125, "Mercedes", "Tijuana", 2, 5), (126, "Lily", "Cancun", 2, None)]
        assert harness.table("users_history").columns == ["userId", "name", "city", "__START_AT", "__END_AT"]
        assert tables["users_current"].rows_quarantined == 1  # the keyless event never reached the target
        assert [r.name for r in harness.table("users_current_quarantine").collect()] == ["Nobody"]
        assert (tables["users_current"].rows_total, tables["users_history"].rows_total) == (3, 7)
        assert tables["users_current"].changes == {"upserts": applied - applied // 3, "deletes": applied // 3}
        assert tables["users_history"].changes["versions_opened"] == opened
        assert tables["users_history"].rows_written == applied  # the change events this run applied
        assert tables["users_history"].to_dict()["changes"] == tables["users_history"].changes

    # an event clashing with a stored one (key 124 at sequence 1) fails both targets and is not stored:
    # once the file is fixed the next run succeeds, with nothing to apply
    (tmp_path / "feed" / "3.csv").write_text(HEADER + "124,Raul,Puebla,UPDATE,1\n126,Lily,Merida,UPDATE,7\n")
    tables, result = harness.run()
    assert result.status == "failed"
    for name in ("users_current", "users_history"):
        assert "share a key and a sequence: userId=124 at sequence 1" in tables[name].error, tables[name].error
    assert rows(harness, "users_current")[-1] == (126, "Lily", "Cancun")  # the valid event in 3.csv waits too
    (tmp_path / "feed" / "3.csv").unlink()
    tables, result = harness.run()
    assert result.status == "success", [t.error for t in tables.values()]
    assert (tables["users_history"].rows_written, tables["users_history"].rows_total) == (0, 7)


def test_databricks_registers_a_streaming_table_and_an_auto_cdc_flow_from_the_checked_feed(spark, tmp_path):
    import types

    from pyspark import pipelines as dp
    from pyspark.pipelines.graph_element_registry import graph_element_registration_context

    from pipelines.engine.project import load_project
    from pipelines.ldp.registrar import Registrar
    from tests.spark.test_registrar import CapturingRegistry

    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    (tmp_path / "feed").mkdir()
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {harness.schema}")
    spark.createDataFrame([(1, "a", "b", "INSERT", 1)], "userId INT, name STRING, city STRING, operation STRING, "
                          "sequenceNum INT").write.saveAsTable(f"{harness.schema}.user_changes")
    calls: list[tuple[str, dict]] = []
    api = types.SimpleNamespace(
        materialized_view=dp.materialized_view, table=dp.table, temporary_view=dp.temporary_view,
        create_streaming_table=lambda **kwargs: calls.append(("create_streaming_table", kwargs)),
        create_auto_cdc_flow=lambda **kwargs: calls.append(("create_auto_cdc_flow", kwargs)))
    project = load_project(harness.path, schema=harness.schema)
    registry = CapturingRegistry()
    with graph_element_registration_context(registry):
        Registrar(spark, project.plan, project.functions, api).register(
            [t for t in project.plan.tables if t.name == "users_history"])

    assert calls == [
        ("create_streaming_table", {"name": "users_history", "comment": None}),
        ("create_auto_cdc_flow", {"target": "users_history", "source": "users_history__cdc_feed",
                                  "keys": ["userId"], "sequence_by": "sequenceNum",
                                  "apply_as_deletes": "operation = 'DELETE'",
                                  "except_column_list": ["operation", "sequenceNum"], "stored_as_scd_type": 2})]
    assert set(registry.outputs) == {"users_history__checked", "users_history__cdc_feed", "users_history_quarantine"}
    assert type(registry.outputs["users_history_quarantine"]).__name__ == "StreamingTable"
    spark.catalog.setCurrentDatabase(harness.schema)  # a pipeline reads its tables by their own names
    try:
        checked = registry.flows["users_history__checked"].func()
    finally:
        spark.catalog.setCurrentDatabase("default")
    assert checked.isStreaming and "_errors" in checked.columns  # the checks run on the feed, as a stream


SNAPSHOT_CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: crm
    layer: bronze
    source: {type: files, format: csv, path: ./crm.csv, options: {header: true, inferSchema: true}}
  - name: crm_history
    layer: silver
    depends_on: [crm]
    expectations:
      - {name: named, criticality: error, check: {function: is_not_null, arguments: {column: name}}}
    snapshot_cdc: {keys: [id], stored_as_scd_type: 2}
  - name: accounts_current
    layer: silver
    source: {type: files, format: csv, path: ./versions, options: {header: true, inferSchema: true}}
    snapshot_cdc: {keys: [id], version_by: version}
  - name: accounts_history
    layer: silver
    source: {type: files, format: csv, path: ./versions, options: {header: true, inferSchema: true}}
    snapshot_cdc: {keys: [id], version_by: version, stored_as_scd_type: 2}
"""
VERSIONS = {1: ["1,a", "2,b"], 2: ["1,a", "2,B", "3,c"], 3: ["2,B", "3,c"]}  # insert, change, disappear


def test_snapshot_cdc_from_a_folder_per_version_and_from_a_table_reread_each_run(spark, tmp_path):
    """No transformation modules but the bronze one: a CDC table's input is used as it is."""
    harness = Harness(spark, tmp_path, {"bronze/crm.py": "def crm(source):\n    return source\n"},
                      config=SNAPSHOT_CONFIG)

    def version(number: int) -> None:
        folder = tmp_path / "versions" / f"version={number}"
        folder.mkdir(parents=True)
        (folder / "part.csv").write_text("id,name\n" + "\n".join(VERSIONS[number]) + "\n")

    (tmp_path / "crm.csv").write_text("id,name\n1,a\n2,b\n")
    version(1)
    version(2)
    tables, result = harness.run()
    assert result.status == "success", [t.error for t in tables.values()]

    (tmp_path / "crm.csv").write_text("id,name\n2,B\n3,\n")  # 1 gone, 2 changed, 3 quarantined: not there
    version(3)
    assert tables["accounts_history"].changes == {"upserts": 4, "deletes": 0, "versions_opened": 4}
    for deletes in (1, 0):  # the rerun finds no new version and an unchanged table: nothing changes
        tables, result = harness.run()
        assert result.status == "success", [t.error for t in tables.values()]
        assert rows(harness, "accounts_current") == [(2, "B"), (3, "c")]
        assert rows(harness, "accounts_history") == [(1, "a", 1, 3), (2, "B", 2, None), (2, "b", 1, 2),
                                                     (3, "c", 2, None)]
        assert harness.table("accounts_history").columns == ["id", "name", "__START_AT", "__END_AT"]
        assert (tables["accounts_current"].rows_total, tables["accounts_history"].rows_total) == (2, 4)
        assert tables["accounts_history"].changes == {"upserts": 0, "deletes": deletes, "versions_opened": 0}

    history = {(r.id, r.name): (r["__START_AT"], r["__END_AT"]) for r in harness.table("crm_history").collect()}
    assert set(history) == {(1, "a"), (2, "b"), (2, "B")}
    first_run, second_run = history[(2, "b")]
    assert first_run < second_run and history[(1, "a")] == (first_run, second_run)
    assert history[(2, "B")] == (second_run, None)  # the rerun's unchanged snapshot opened no version
    assert dict(harness.table("crm_history").dtypes)["__START_AT"] == "timestamp"
    assert [r.id for r in harness.table("crm_history_quarantine").collect()] == [3]


def test_databricks_registers_snapshot_flows_from_a_view_or_a_function_of_the_latest_version(spark, tmp_path):
    import types

    from pyspark import pipelines as dp
    from pyspark.pipelines.graph_element_registry import graph_element_registration_context

    from pipelines.engine.project import load_project
    from pipelines.ldp.registrar import NextSnapshot, Registrar
    from tests.spark.test_registrar import CapturingRegistry

    harness = Harness(spark, tmp_path, {"bronze/crm.py": "def crm(source):\n    return source\n"},
                      config=SNAPSHOT_CONFIG)
    for number, lines in VERSIONS.items():
        folder = tmp_path / "versions" / f"version={number}"
        folder.mkdir(parents=True)
        (folder / "part.csv").write_text("id,name\n" + "\n".join(lines) + "\n")
    (tmp_path / "crm.csv").write_text("id,name\n")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {harness.schema}")
    spark.createDataFrame([(1, "a"), (2, None)], "id INT, name STRING").write.saveAsTable(f"{harness.schema}.crm")
    calls: list[tuple[str, dict]] = []
    api = types.SimpleNamespace(
        materialized_view=dp.materialized_view, table=dp.table, temporary_view=dp.temporary_view,
        create_streaming_table=lambda **kwargs: calls.append(("create_streaming_table", kwargs)),
        create_auto_cdc_from_snapshot_flow=lambda **kwargs: calls.append(("create_auto_cdc_from_snapshot_flow",
                                                                          kwargs)))
    project = load_project(harness.path, schema=harness.schema)
    registry = CapturingRegistry()
    with graph_element_registration_context(registry):
        Registrar(spark, project.plan, project.functions, api).register(
            [t for t in project.plan.tables if t.name in ("crm_history", "accounts_history")])

    function = calls[1][1]["source"]  # in plan order: accounts_history reads a source, crm_history a table
    assert calls == [
        ("create_streaming_table", {"name": "accounts_history", "comment": None}),
        ("create_auto_cdc_from_snapshot_flow", {"target": "accounts_history", "source": function, "keys": ["id"],
                                                "stored_as_scd_type": 2}),
        ("create_streaming_table", {"name": "crm_history", "comment": None}),
        ("create_auto_cdc_from_snapshot_flow", {"target": "crm_history", "source": "crm_history__snapshot",
                                                "keys": ["id"], "stored_as_scd_type": 2})]
    assert isinstance(function, NextSnapshot) and function.version_by == "version"
    assert set(registry.outputs) == {"crm_history__checked", "crm_history__snapshot", "crm_history_quarantine"}
    assert type(registry.outputs["crm_history_quarantine"]).__name__ == "MaterializedView"
    spark.catalog.setCurrentDatabase(harness.schema)  # a pipeline reads its tables by their own names
    try:
        registry.flows["crm_history__checked"].func().createOrReplaceTempView("crm_history__checked")  # as LDP would
        snapshot = registry.flows["crm_history__snapshot"].func
        assert sorted(tuple(r) for r in snapshot().collect()) == [(1, "a")]  # the unnamed row is quarantined
    finally:
        spark.catalog.dropTempView("crm_history__checked")
        spark.catalog.setCurrentDatabase("default")
    versions = []  # LDP calls the function with the latest version applied until it returns None
    while (found := function(versions[-1][1] if versions else None)) is not None:
        versions.append((sorted(tuple(r) for r in found[0].collect()), found[1]))
    assert versions == [([(1, "a"), (2, "b")], 1), ([(1, "a"), (2, "B"), (3, "c")], 2), ([(2, "B"), (3, "c")], 3)]
