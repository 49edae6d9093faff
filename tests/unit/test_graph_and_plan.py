"""Dependency checks, cycles, selection and levels: pure Python, no Spark."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import load_config, parse_config
from pipelines.core.errors import ConfigError
from pipelines.core.graph import Selection
from pipelines.core.plan import build_plan

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = load_config(REPO / "config.yml")


def config_of(text: str):
    return parse_config(text, Path("config.yml"))


def problems(config, selection=Selection()) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_plan(config, selection)
    return [p.render() for p in caught.value.problems]


def test_example_plan_order_and_levels():
    plan = build_plan(EXAMPLE)
    assert plan.levels == (("customers_bronze", "order_events_bronze", "orders_bronze"),
                           ("customers_history", "customers_silver"),
                           ("customers_gold", "orders_silver"), ("customer_orders_gold",))
    assert plan.order == tuple(name for level in plan.levels for name in level)
    assert plan.existing_inputs == ()


def test_downstream_of_names_every_table_reading_them_in_plan_order():
    plan = build_plan(EXAMPLE)
    assert plan.downstream_of(["customers_silver"]) == ("customers_silver", "customers_gold", "orders_silver",
                                                       "customer_orders_gold")
    assert plan.downstream_of(iter(["order_events_bronze", "customer_orders_gold"])) == (
        "order_events_bronze", "customer_orders_gold")


def test_unknown_dependency_with_suggestion():
    [message] = problems(config_of("tables:\n- {name: orders, layer: bronze}\n"
                                   "- {name: clean, layer: silver, depends_on: [order]}\n"))
    assert "table 'clean'" in message and "key 'depends_on'" in message and "'order'" in message
    assert "did you mean 'orders'?" in message


def test_cycle_prints_its_path():
    messages = problems(config_of(
        "tables:\n- {name: clean_a, layer: silver, depends_on: [clean_b]}\n"
        "- {name: clean_b, layer: silver, depends_on: [clean_a]}\n"
        "- {name: solo, layer: gold, depends_on: [solo]}\n"))
    assert any("clean_a → clean_b → clean_a" in m for m in messages)
    assert any("solo → solo" in m for m in messages)


def test_lower_layer_cannot_depend_on_higher_layer():
    messages = problems(config_of(
        "tables:\n- {name: g, layer: gold}\n- {name: s, layer: silver, depends_on: [g]}\n"
        "- {name: b, layer: bronze, depends_on: [s]}\n"))
    assert any("a silver table cannot depend on the gold table 'g'" in m for m in messages)
    assert any("a bronze table cannot depend on the silver table 's'" in m for m in messages)


@pytest.mark.parametrize("selection, expected", [
    (Selection(tags=("daily", "critical")), {"customers_bronze"}),
    (Selection(tags=("gold", "bronze"), match="any"),
     {"customers_bronze", "orders_bronze", "order_events_bronze", "customers_gold", "customer_orders_gold"}),
    (Selection(tags=("gold", "bronze"), match="all"), None),
    (Selection(select=("orders_silver",)), {"orders_silver"}),
    (Selection(select=("+orders_silver",)),
     {"orders_silver", "orders_bronze", "customers_silver", "customers_bronze"}),
    (Selection(select=("+orders_silver",), exclude=("customers_bronze",)),
     {"orders_silver", "orders_bronze", "customers_silver"}),
    (Selection(tags=("silver",), select=("+customer_orders_gold",)), {"orders_silver", "customers_silver"}),
])
def test_selection(selection, expected):
    if expected is None:
        with pytest.raises(ConfigError, match="matches no table.*tags in the config: bronze, critical"):
            build_plan(EXAMPLE, selection)
    else:
        assert set(build_plan(EXAMPLE, selection).order) == expected


def test_tables_outside_the_selection_are_read_as_existing():
    plan = build_plan(EXAMPLE, Selection(tags=("gold",)))
    assert plan.existing_inputs == ("customers_silver", "orders_silver")
    assert plan.table("customer_orders_gold").upstream_existing == ("customers_silver", "orders_silver")


def test_unknown_names_in_select_and_exclude():
    with pytest.raises(ConfigError, match="--select names an unknown table.*did you mean 'orders_silver'"):
        build_plan(EXAMPLE, Selection(select=("+order_silver",)))
    with pytest.raises(ConfigError, match="--exclude names an unknown table"):
        build_plan(EXAMPLE, Selection(exclude=("nope",)))


def test_streaming_mode_marks_file_sourced_tables_as_streaming():
    plan = build_plan(EXAMPLE, mode="streaming")
    assert {t.name for t in plan.tables if t.streaming} == {"customers_bronze", "orders_bronze", "order_events_bronze"}
