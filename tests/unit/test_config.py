"""config.yml parsing and validation: every problem named by file, table, key, value and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import FilesSource, TableSource, load_config, parse_config
from pipelines.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("cfg/config.yml"))
    return [p.render() for p in caught.value.problems]


def test_example_config_loads_into_typed_immutable_objects():
    config = load_config(REPO / "config.yml")
    assert [t.name for t in config.tables] == [
        "customers_bronze", "orders_bronze", "order_events_bronze", "customers_silver", "customers_history",
        "orders_silver", "customers_gold", "customer_orders_gold"]
    bronze = config.table("customers_bronze")
    assert bronze.tags == ("bronze", "daily", "critical")
    assert isinstance(bronze.source, FilesSource) and bronze.source.options == {"header": True}
    assert config.pipeline.schema_name == "retail"
    assert [t.name for t in config.tables if "daily" not in t.tags] == ["order_events_bronze"]  # on a real broker only
    with pytest.raises(Exception):
        bronze.name = "other"  # frozen


def test_relative_source_paths_resolve_against_the_config_folder(tmp_path):
    config = parse_config("tables:\n- {name: a, layer: bronze, source: {type: files, format: csv, "
                          "path: ./landing}}\n", tmp_path / "config.yml")
    assert config.tables[0].source.resolved_path(config.base_dir) == str(tmp_path / "landing")
    cloud = FilesSource(type="files", format="csv", path="s3://bucket/x")
    assert cloud.resolved_path(tmp_path) == "s3://bucket/x"


def test_table_source_is_accepted():
    config = parse_config("tables:\n- {name: a, layer: bronze, source: {type: table, table: main.raw.a}}\n",
                          Path("config.yml"))
    assert config.tables[0].source == TableSource(type="table", table="main.raw.a")


def test_unknown_key_suggests_the_closest_valid_key_with_line():
    [message] = problems_of("tables:\n- name: a\n  layer: bronze\n  depend_on: [b]\n")
    assert "cfg/config.yml:4" in message  # the line of the misspelt key
    assert "table 'a'" in message and "unknown key 'depend_on'" in message
    assert "did you mean 'depends_on'?" in message


def test_unknown_key_in_source_and_pipeline_blocks():
    messages = problems_of("pipeline: {nme: x}\ntables:\n- {name: a, layer: bronze, source: "
                           "{type: files, format: csv, path: p, option: {}}}\n")
    assert any("unknown key 'nme'" in m and "did you mean 'name'?" in m for m in messages)
    assert any("unknown key 'option'" in m and "did you mean 'options'?" in m for m in messages)


def test_wrong_types_and_bad_values_are_all_reported_together():
    messages = problems_of(
        "tables:\n"
        "- {name: a, layer: platinum, tags: daily}\n"
        "- {name: 1bad, layer: bronze}\n"
        "- {name: c, layer: silver, source: {type: rest}}\n")
    assert len(messages) == 4
    assert any("table 'a'" in m and "key 'layer'" in m and "'platinum'" in m for m in messages)
    assert any("table 'a'" in m and "key 'tags'" in m and "must be a list" in m and "'daily'" in m
               for m in messages)
    assert any("table '1bad'" in m and "Python identifier" in m for m in messages)
    assert any("table 'c'" in m and "unknown source type" in m and "'rest'" in m for m in messages)


def test_invalid_yaml_reports_line_and_column():
    [message] = problems_of("tables:\n  - name: a\n    layer: [bronze\n")
    assert message.startswith("cfg/config.yml:4:1") or message.startswith("cfg/config.yml:3")
    assert "invalid YAML" in message


def test_missing_tables_and_missing_required_keys():
    assert any("key 'tables'" in m and "required" in m for m in problems_of("pipeline: {name: x}\n"))
    assert any("table 'a'" in m and "key 'layer'" in m and "required" in m
               for m in problems_of("tables:\n- {name: a}\n"))
    assert any("top level must be a mapping" in m for m in problems_of("- just a list\n"))


def test_duplicate_names_point_at_the_second_definition():
    [message] = problems_of("tables:\n- {name: a, layer: bronze}\n- {name: b, layer: bronze}\n"
                            "- {name: a, layer: silver}\n")
    assert message.startswith("cfg/config.yml:4") and "duplicate table name" in message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yml")


def test_yaml_12_semantics_merge_keys_and_duplicate_keys():
    text = ("tables:\n- {name: a, layer: bronze}\n"
            "- &s {name: b, layer: silver, tags: [on, daily], depends_on: [a]}\n"
            "- {<<: *s, name: c, layer: gold}\n")
    config = parse_config(text, Path("config.yml"))
    assert config.table("b").tags == ("on", "daily")  # YAML 1.2: `on` is a string, not True
    assert config.table("c").layer == "gold" and config.table("c").depends_on == ("a",)
    [message] = problems_of("tables:\n- {name: a, layer: bronze, layer: silver}\n")
    assert "duplicate mapping key" in message
