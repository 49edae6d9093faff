"""`cdc:` / `snapshot_cdc:` specs: every validation rule, and the exact `dp.*` keyword arguments."""
from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from pipelines.core.cdc import OPEN_SOURCE_PARAMETERS, CdcSpec, SnapshotCdcSpec

BASE = {"keys": ["id"], "sequence_by": "seq"}


def spec(**changes) -> CdcSpec:
    return CdcSpec(**{**BASE, **changes})


def error(**changes) -> str:
    with pytest.raises(ValueError) as caught:
        spec(**changes)
    return str(caught.value)


def test_defaults_mirror_ldp():
    s = spec()
    assert (s.keys, s.sequence_by, s.stored_as_scd_type, s.ignore_null_updates) == (("id",), "seq", 1, False)
    assert s.apply_as_deletes is s.apply_as_truncates is s.column_list is s.except_column_list is None


def test_the_spec_is_frozen_and_forbids_unknown_fields():
    with pytest.raises(ValidationError):
        spec().keys = ("x",)
    assert "extra_forbidden" in str(pytest.raises(ValidationError, spec, sequnce_by="x").value.errors())


@pytest.mark.parametrize("keys, message", [
    ([], "keys must name at least one column"),
    ("id", "keys must be a list of column names"),
    (["id", "id"], "keys names column 'id' twice"),
    (["id", ""], "keys must hold column names"),
    ([1], "keys must hold column names"),
])
def test_keys_are_a_non_empty_list_of_distinct_names(keys, message):
    assert message in error(keys=keys)


def test_keys_are_required_and_so_is_sequence_by():
    with pytest.raises(ValidationError, match="keys"):
        CdcSpec(sequence_by="seq")
    with pytest.raises(ValidationError, match="sequence_by"):
        CdcSpec(keys=["id"])


def test_sequence_by_is_a_column_or_a_list_compared_as_a_struct():
    assert spec(sequence_by=["ts", "n"]).sequence_columns == ("ts", "n")
    assert spec().sequence_columns == ("seq",)
    assert spec(sequence_by=["ts", "n"]).sequence_expression() == "struct(`ts`, `n`)"
    assert "sequence_by must name a column" in error(sequence_by=" ")
    assert "sequence_by must name at least one column" in error(sequence_by=[])
    assert "sequence_by names column 'ts' twice" in error(sequence_by=["ts", "ts"])
    assert "sequence_by" in error(sequence_by=3)


@pytest.mark.parametrize("value, expected", [(1, 1), (2, 2), ("1", 1), ("2", 2)])
def test_scd_type_takes_an_int_or_its_string_as_ldp_does(value, expected):
    assert spec(stored_as_scd_type=value).stored_as_scd_type == expected


@pytest.mark.parametrize("value", [3, 0, "two", True, None, 1.5])
def test_other_scd_types_are_refused(value):
    assert "stored_as_scd_type must be 1 or 2" in error(stored_as_scd_type=value)


@pytest.mark.parametrize("field", ["apply_as_deletes", "apply_as_truncates"])
@pytest.mark.parametrize("value", ["", "  ", 5, True])
def test_delete_and_truncate_conditions_are_sql_expressions(field, value):
    assert f"{field} must be a SQL boolean expression" in error(**{field: value})


def test_truncates_are_for_type_1_only():
    assert spec(apply_as_truncates="op = 'T'").apply_as_truncates == "op = 'T'"
    assert "apply_as_truncates is supported with stored_as_scd_type: 1 only" in error(
        stored_as_scd_type=2, apply_as_truncates="op = 'T'")


def test_column_list_and_except_column_list_exclude_each_other():
    assert "give column_list or except_column_list, not both" in error(column_list=["id"],
                                                                       except_column_list=["op"])


def test_column_list_keeps_the_keys_and_except_column_list_cannot_drop_them():
    assert "column_list must include the keys; missing ['id']" in error(column_list=["name"])
    assert "except_column_list cannot exclude a key column: ['id']" in error(except_column_list=["id", "op"])


@pytest.mark.parametrize("field", ["column_list", "except_column_list", "track_history_column_list",
                                   "track_history_except_column_list"])
def test_column_lists_hold_distinct_names(field):
    extra = {"stored_as_scd_type": 2} if field.startswith("track") else {}
    assert f"{field} names column 'a' twice" in error(**{field: ["id", "a", "a"]}, **extra)
    assert f"{field} must be a list of column names" in error(**{field: "a"}, **extra)


def test_column_list_must_not_be_empty_but_an_except_list_may():
    assert "column_list must name at least one column" in error(column_list=[])
    assert spec(except_column_list=[]).except_column_list == ()
    assert spec(stored_as_scd_type=2, track_history_except_column_list=[]).track_history_except_column_list == ()


@pytest.mark.parametrize("field", ["track_history_column_list", "track_history_except_column_list"])
def test_track_history_needs_type_2(field):
    assert f"{field} needs stored_as_scd_type: 2" in error(**{field: ["a"]})
    assert getattr(spec(stored_as_scd_type=2, **{field: ["a"]}), field) == ("a",)


def test_the_two_track_history_lists_exclude_each_other():
    assert "give track_history_column_list or track_history_except_column_list, not both" in error(
        stored_as_scd_type=2, track_history_column_list=["a"], track_history_except_column_list=["b"])


def test_tracked_columns_must_be_stored_when_column_list_says_which_are():
    assert "track_history_column_list names columns not in column_list: ['b']" in error(
        stored_as_scd_type=2, column_list=["id", "a"], track_history_column_list=["a", "b"])


def test_ignore_null_updates_is_a_real_boolean():
    assert spec(ignore_null_updates=True).ignore_null_updates is True
    assert "ignore_null_updates must be true or false" in error(ignore_null_updates="yes")
    assert "ignore_null_updates must be true or false" in error(ignore_null_updates=1)


def test_every_broken_rule_is_reported_at_once():
    message = error(stored_as_scd_type=2, apply_as_truncates="t", column_list=["a"], except_column_list=["b"])
    for part in ("not both", "apply_as_truncates", "must include the keys"):
        assert part in message


def test_stored_and_tracked_columns():
    columns = ["id", "name", "city", "op", "seq", "updated_by"]
    s = spec(stored_as_scd_type=2, except_column_list=["op", "seq"], track_history_except_column_list=["updated_by"])
    assert s.stored_columns(columns) == ("id", "name", "city", "updated_by")
    assert s.tracked_columns(columns) == ("name", "city")
    listed = spec(stored_as_scd_type=2, column_list=["city", "id"], track_history_column_list=["city"])
    assert listed.stored_columns(columns) == ("id", "city")  # input order
    assert listed.tracked_columns(columns) == ("city",)
    assert spec().stored_columns(columns) == tuple(columns)
    assert spec(stored_as_scd_type=2).tracked_columns(["id", "a"]) == ("a",)


def test_missing_columns_names_what_the_input_lacks_once():
    s = spec(sequence_by=["ts", "seq"], column_list=["id", "a", "b"])
    assert s.missing_columns(["id", "seq", "a"]) == ["ts", "b"]
    assert spec().missing_columns(["id", "seq"]) == []


LDP_EXAMPLE = {"keys": ["userId"], "sequence_by": "sequenceNum", "apply_as_deletes": "operation = 'DELETE'",
               "except_column_list": ["operation", "sequenceNum"]}


def test_flow_kwargs_are_ldp_create_auto_cdc_flow_arguments():
    kwargs = CdcSpec(**LDP_EXAMPLE, stored_as_scd_type="2").flow_kwargs("users_history", "users_cdc")
    assert kwargs == {"target": "users_history", "source": "users_cdc", "keys": ["userId"],
                      "sequence_by": "sequenceNum", "apply_as_deletes": "operation = 'DELETE'",
                      "except_column_list": ["operation", "sequenceNum"], "stored_as_scd_type": 2}


def test_flow_kwargs_carry_every_option_set_and_name_and_once():
    s = spec(stored_as_scd_type=2, ignore_null_updates=True, apply_as_deletes="op = 'D'", column_list=["id", "a"],
             track_history_except_column_list=["a"])
    kwargs = s.flow_kwargs("t", "s", name="f", once=True)
    assert kwargs == {"target": "t", "source": "s", "keys": ["id"], "sequence_by": "seq",
                      "ignore_null_updates": True, "apply_as_deletes": "op = 'D'", "column_list": ["id", "a"],
                      "track_history_except_column_list": ["a"], "stored_as_scd_type": 2, "name": "f",
                      "once": True}
    assert spec(apply_as_truncates="op = 'T'", track_history_column_list=None).flow_kwargs("t", "s")[
        "apply_as_truncates"] == "op = 'T'"


def test_a_list_sequence_by_becomes_a_struct():
    s = spec(sequence_by=["ts", "n"])
    assert s.flow_kwargs("t", "s")["sequence_by"] == "struct(`ts`, `n`)"
    assert s.flow_kwargs("t", "s", struct=lambda *c: ("struct",) + c)["sequence_by"] == ("struct", "ts", "n")


def test_flow_kwargs_names_are_databricks_parameters():
    """Every name we may pass is a parameter of LDP's documented signature (docs: ldp-python-ref-apply-changes)."""
    documented = {"target", "source", "keys", "sequence_by", "ignore_null_updates", "apply_as_deletes",
                  "apply_as_truncates", "column_list", "except_column_list", "stored_as_scd_type",
                  "track_history_column_list", "track_history_except_column_list", "name", "once"}
    s = spec(stored_as_scd_type=2, ignore_null_updates=True, apply_as_deletes="d", except_column_list=["x"],
             track_history_column_list=["a"])
    assert set(s.flow_kwargs("t", "s", name="n", once=True)) <= documented


def test_open_source_parameters_match_pyspark_and_gaps_say_what_it_lacks():
    api = pytest.importorskip("pyspark.pipelines.api")
    assert set(inspect.signature(api.create_auto_cdc_flow).parameters) == OPEN_SOURCE_PARAMETERS
    assert spec(**{"apply_as_deletes": "d", "except_column_list": ["op"]}).open_source_gaps() == []
    assert spec(ignore_null_updates=True, apply_as_truncates="t").open_source_gaps() == [
        "ignore_null_updates", "apply_as_truncates"]
    assert spec(stored_as_scd_type=2).open_source_gaps() == ["stored_as_scd_type: 2"]


def test_snapshot_spec():
    s = SnapshotCdcSpec(keys=["id"], stored_as_scd_type="2")
    assert s.flow_kwargs("t", "src", name="f") == {"target": "t", "source": "src", "keys": ["id"],
                                                    "stored_as_scd_type": 2, "name": "f"}
    assert SnapshotCdcSpec(keys=["id"]).stored_as_scd_type == 1
    with pytest.raises(ValueError, match="keys must name at least one column"):
        SnapshotCdcSpec(keys=[])
    with pytest.raises(ValueError, match="stored_as_scd_type must be 1 or 2"):
        SnapshotCdcSpec(keys=["id"], stored_as_scd_type=3)
    with pytest.raises(ValidationError):
        SnapshotCdcSpec(keys=["id"], sequence_by="x")


def test_snapshot_spec_passes_history_lists_and_checks_them_as_ldp_does():
    s = SnapshotCdcSpec(keys=["id"], stored_as_scd_type=2, track_history_except_column_list=["updated_by"])
    assert s.flow_kwargs("t", "src") == {"target": "t", "source": "src", "keys": ["id"], "stored_as_scd_type": 2,
                                         "track_history_except_column_list": ["updated_by"]}
    with pytest.raises(ValueError, match="track_history_column_list needs stored_as_scd_type: 2"):
        SnapshotCdcSpec(keys=["id"], track_history_column_list=["v"])
    with pytest.raises(ValueError, match="not both"):
        SnapshotCdcSpec(keys=["id"], stored_as_scd_type=2, track_history_column_list=["a"],
                        track_history_except_column_list=["b"])
    with pytest.raises(ValueError, match="version_by 'id' cannot be a key"):
        SnapshotCdcSpec(keys=["id"], version_by="id")
    with pytest.raises(ValueError, match="version_by must name the column"):
        SnapshotCdcSpec(keys=["id"], version_by=" ")


def test_snapshots_become_a_change_spec_sequenced_by_version_with_the_history_lists():
    change = SnapshotCdcSpec(keys=["id"], stored_as_scd_type=2, track_history_column_list=["v"]).change_spec(
        "__v", "__gone")
    assert (change.sequence_by, change.apply_as_deletes, change.except_column_list) == ("__v", "`__gone`",
                                                                                          ("__v", "__gone"))
    assert (change.stored_as_scd_type, change.track_history_column_list) == (2, ("v",))


SNAPSHOT_PROJECT = """
pipeline: {transformations: ./transformations}
tables:
  - {name: customers_raw, layer: bronze, source: {type: table, table: main.crm.customers}}
  - name: customers_scd
    layer: silver
    depends_on: [customers_raw]
    snapshot_cdc: {keys: [id], stored_as_scd_type: 2}
"""


def test_a_snapshot_table_is_planned_as_such_and_needs_no_transformation(tmp_path):
    from pipelines.core.config import load_config
    from pipelines.core.loader import PassThrough, check_signature, load_transformations
    from pipelines.core.outputs import AutoCdcFromSnapshotFlow, SnapshotCdcTarget
    from pipelines.core.plan import build_plan
    from tests.conftest import write_project

    config = load_config(write_project(tmp_path, SNAPSHOT_PROJECT, {
        "bronze/customers_raw.py": "def customers_raw(source):\n    return source\n"}))
    functions = load_transformations(config, config.tables)
    table = config.table("customers_scd")
    assert functions["customers_scd"] == PassThrough("customers_raw") and not check_signature(
        functions["customers_scd"], table)
    assert functions["customers_scd"](customers_raw="feed", spark=None) == "feed"
    planned = {t.name: t for t in build_plan(config).tables}["customers_scd"]
    assert planned.output == SnapshotCdcTarget(2)
    assert planned.flows == (AutoCdcFromSnapshotFlow("customers_scd", "customers_scd"),)


def test_a_plain_table_still_needs_its_module(tmp_path):
    from pipelines.core.config import load_config
    from pipelines.core.errors import ConfigError
    from pipelines.core.loader import load_transformations
    from tests.conftest import write_project

    config = load_config(write_project(tmp_path, SNAPSHOT_PROJECT.replace(
        "    snapshot_cdc: {keys: [id], stored_as_scd_type: 2}\n", ""), {
        "bronze/customers_raw.py": "def customers_raw(source):\n    return source\n"}))
    with pytest.raises(ConfigError, match="transformation module not found"):
        load_transformations(config, config.tables)


@pytest.mark.parametrize("block, message", [
    ("    snapshot_cdc: {keys: [id]}\n    cdc: {keys: [id], sequence_by: seq}\n",
     "give cdc: (a change feed) or snapshot_cdc: (snapshots), not both"),
    ("    snapshot_cdc: {keys: [id]}\n    source: {type: table, table: main.crm.other}\n",
     "a table with snapshot_cdc: reads one snapshot input"),
    ("    snapshot_cdc: {keys: [id], stored_as_scd_type: 1, track_history_column_list: [v]}\n",
     "track_history_column_list needs stored_as_scd_type: 2"),
])
def test_snapshot_config_errors_are_located(block, message):
    from pathlib import Path

    from pipelines.core.config import parse_config
    from pipelines.core.errors import ConfigError

    text = SNAPSHOT_PROJECT.replace("    snapshot_cdc: {keys: [id], stored_as_scd_type: 2}\n", block)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("cfg/config.yml"))
    rendered = [p.render() for p in caught.value.problems]
    assert any(message in r and "customers_scd" in r and "cfg/config.yml" in r for r in rendered), rendered


@pytest.mark.parametrize("cdc, sink, message", [
    ("{keys: [id], sequence_by: seq}", "{type: lakebase, schema: s, mode: append}",
     "sinks[0] (lakebase): mode 'append' copies each run's rows, but a CDC table's rows are updated in place"),
    ("{keys: [id], sequence_by: seq, stored_as_scd_type: 2}", "{type: lakebase, schema: s, mode: upsert, "
     "primary_key: [id]}", "its upsert primary_key must include __START_AT (primary_key: [id, __START_AT])"),
    ("{keys: [id], sequence_by: seq, apply_as_deletes: \"op = 'D'\"}",
     "{type: lakebase, schema: s, mode: upsert, primary_key: [id]}", "mode 'upsert' never deletes"),
    ("{keys: [id], sequence_by: seq}", "{type: delta, table: c.s.copy, mode: append}",
     "sinks[0] (delta): mode 'append' copies each run's rows"),
    ("{keys: [id], sequence_by: seq, stored_as_scd_type: 2}", "{type: delta, path: p, mode: merge, keys: [id]}",
     "its merge keys must include __START_AT (keys: [id, __START_AT])"),
    ("{keys: [id], sequence_by: seq, apply_as_deletes: \"op = 'D'\"}",
     "{type: delta, path: p, mode: merge, keys: [id]}", "mode 'merge' never deletes"),
])
def test_a_sink_that_cannot_copy_a_cdc_table_is_a_located_error(cdc, sink, message):
    from pathlib import Path

    from pipelines.core.config import parse_config
    from pipelines.core.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(cdc_table_with_sink(cdc, sink), Path("cfg/config.yml"))
    [rendered] = [p.render() for p in caught.value.problems]
    assert message in rendered and "table 'target'" in rendered and "cfg/config.yml" in rendered, rendered


@pytest.mark.parametrize("cdc, sink", [
    ("{keys: [id], sequence_by: seq}", "{type: lakebase, schema: s}"),  # replace mirrors every change
    ("{keys: [id], sequence_by: seq}", "{type: lakebase, schema: s, mode: upsert, primary_key: [id]}"),
    ("{keys: [id], sequence_by: seq, stored_as_scd_type: 2, apply_as_deletes: \"op = 'D'\"}",
     "{type: lakebase, schema: s, mode: upsert, primary_key: [id, __START_AT]}"),  # a delete closes a version
    ("{keys: [id], sequence_by: seq}", "{type: delta, path: p}"),
    ("{keys: [id], sequence_by: seq, stored_as_scd_type: 2}",
     "{type: delta, path: p, mode: merge, keys: [id, __START_AT]}"),
])
def test_sinks_that_can_copy_a_cdc_table_are_accepted(cdc, sink):
    from pathlib import Path

    from pipelines.core.config import parse_config

    assert parse_config(cdc_table_with_sink(cdc, sink), Path("cfg/config.yml")).table("target").sinks


def cdc_table_with_sink(cdc: str, sink: str) -> str:
    """A config whose table `target` applies `cdc` to `feed` and copies itself to `sink`."""
    return ("tables:\n  - {name: feed, layer: bronze}\n  - name: target\n    layer: silver\n"
            f"    depends_on: [feed]\n    cdc: {cdc}\n    sinks: [{sink}]\n")


def test_ddl_columns_reads_top_level_names_without_spark():
    from pipelines.core.cdc_checks import ddl_columns

    assert ddl_columns("userId INT, name STRING") == ["userId", "name"]
    assert ddl_columns("a STRUCT<x: INT, y: STRING>, `b c` DECIMAL(10, 2) NOT NULL COMMENT 'p, q', d: MAP<STRING, INT>"
                       ) == ["a", "b c", "d"]


@pytest.mark.parametrize("block, module, found", [
    ("cdc: {keys: [user_id], sequence_by: seq}", False, "cdc names column(s) ['user_id', 'seq']"),
    ("snapshot_cdc: {keys: [id], version_by: version}", False, "snapshot_cdc names column(s) ['version']"),
    ("cdc: {keys: [user_id], sequence_by: seq}", True, None),  # a transformation may make the columns
    ("cdc: {keys: [id], sequence_by: v}", False, None),
])
def test_cdc_columns_missing_from_a_declared_source_schema_are_located_config_errors(tmp_path, block, module,
                                                                                      found):
    from pipelines.core.errors import ConfigError
    from pipelines.engine.project import load_project
    from tests.conftest import write_project

    (tmp_path / "feed").mkdir()
    config = write_project(tmp_path, f"""
pipeline: {{transformations: ./transformations}}
tables:
  - name: changes
    layer: silver
    source: {{type: files, format: csv, path: ./feed, schema: "id INT, v STRING"}}
    {block}
""", {"silver/changes.py": "def changes(source):\n    return source\n"} if module else {})
    if found is None:
        load_project(config)
        return
    with pytest.raises(ConfigError) as caught:
        load_project(config)
    rendered = caught.value.problems[0].render()
    assert found in rendered and "table 'changes'" in rendered and "config.yml:7" in rendered, rendered
    assert "its columns: ['id', 'v']" in rendered
