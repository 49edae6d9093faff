"""Output and flow kinds: the plan states each table's kind, and every consumer dispatches on it from its
own table, so a new kind is one class plus one registration per consumer. No Spark session."""
from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import ClassVar, Iterator

import pytest

from pipelines.catalog.storage import APPEND, OVERWRITE, WRITE_MODES
from pipelines.core.config import load_config
from pipelines.core.outputs import (AutoCdcFlow, CdcTarget, MaterializedView, Output, OutputHandlers, QueryFlow,
                                    StreamingTable, UnsupportedOutput)
from pipelines.core.plan import build_plan
from pipelines.engine.render import plan_text
from pipelines.ldp.registrar import DECORATORS, Registrar
from pipelines.quality.materialize import WRITERS, Materializer

EXAMPLE = load_config(Path(__file__).resolve().parents[2] / "config.yml")


@dataclasses.dataclass(frozen=True)
class ToyTarget(Output):
    """A kind none of the consumers knows until the test registers it."""

    kind: ClassVar[str] = "toy_target"
    label: ClassVar[str] = "toy target"


@pytest.fixture
def toy_registered() -> Iterator[None]:
    """ToyTarget's one entry in each consumer's table, removed afterwards."""
    DECORATORS.register(ToyTarget, lambda dp: dp.toy)
    WRITERS.register(ToyTarget, Materializer._replace)
    WRITE_MODES.register(ToyTarget, APPEND)
    yield
    for table in (DECORATORS, WRITERS, WRITE_MODES):
        table.unregister(ToyTarget)


def test_the_plan_states_each_tables_kind_and_the_flow_that_writes_it():
    batch, streaming = build_plan(EXAMPLE), build_plan(EXAMPLE, mode="streaming")
    assert {t.name: t.output for t in batch.tables if t.output != MaterializedView()} == {
        "customers_history": CdcTarget(stored_as_scd_type=2)}  # its cdc: says so, in either mode
    assert streaming.table("customers_history").flows == (AutoCdcFlow("customers_history", "customers_history"),)
    bronze = {"customers_bronze", "orders_bronze", "order_events_bronze"}
    assert {t.name for t in streaming.tables if t.output == StreamingTable()} == bronze
    assert {t.name for t in streaming.tables if t.streaming} == bronze
    assert streaming.table("orders_bronze").flows == (QueryFlow("orders_bronze", "orders_bronze"),)
    described = {t["name"]: t for t in streaming.to_dict()["tables"]}
    assert described["orders_bronze"]["output"] == "streaming_table"
    assert described["orders_silver"]["output"] == "materialized_view"
    assert described["orders_silver"]["flows"] == [{"name": "orders_silver", "kind": "query"}]


def test_streaming_is_read_only_and_derived_from_the_kind():
    table = build_plan(EXAMPLE).table("orders_bronze")
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.streaming = True  # type: ignore[misc]
    assert dataclasses.replace(table, output=StreamingTable()).streaming


def test_every_consumer_handles_every_shipped_kind():
    for table in (DECORATORS, WRITERS, WRITE_MODES):
        assert MaterializedView in table and StreamingTable in table
    assert WRITE_MODES[MaterializedView()] is OVERWRITE and WRITE_MODES[StreamingTable()] is APPEND


def test_a_kind_without_its_handler_is_a_clear_error_naming_the_consumer():
    for table, consumer in ((DECORATORS, "LDP registrar"), (WRITERS, "materializer"), (WRITE_MODES, "storage")):
        with pytest.raises(UnsupportedOutput, match=f"{consumer} has no handler for output kind 'toy_target'") as err:
            table[ToyTarget()]
        assert err.value.problems[0].hint and ".register(kind, handler)" in err.value.problems[0].hint


def test_a_new_kind_is_one_class_plus_its_registration(toy_registered):
    plan = build_plan(EXAMPLE)
    toy = dataclasses.replace(plan.table("customers_gold"), output=ToyTarget())
    toy_plan = dataclasses.replace(plan, tables=tuple(toy if t.name == toy.name else t for t in plan.tables))
    assert {t["name"]: t["output"] for t in toy_plan.to_dict()["tables"]}["customers_gold"] == "toy_target"
    assert "customers_gold [gold] toy target;" in plan_text(toy_plan)
    assert WRITERS[ToyTarget()] is Materializer._replace and WRITE_MODES[ToyTarget()] is APPEND

    defined: dict[str, object] = {}
    dp = types.SimpleNamespace(toy=lambda **options: lambda query: defined.update(options, query=query))
    registrar = types.SimpleNamespace(dp=dp, plan=toy_plan)
    registrar._options = lambda *args: Registrar._options(registrar, *args)  # type: ignore[arg-type]
    Registrar._define(registrar, toy.config, toy.output, lambda: None)  # type: ignore[arg-type]
    assert defined["name"] == "customers_gold"


def test_a_subclass_of_a_kind_uses_its_parents_handler_until_it_registers_its_own():
    class AppendOnlyTable(StreamingTable):
        kind: ClassVar[str] = "append_only_table"

    handlers = OutputHandlers("toy consumer", {StreamingTable: "append"})
    assert handlers[AppendOnlyTable()] == "append"
    handlers.register(AppendOnlyTable, "append once")
    assert handlers[AppendOnlyTable()] == "append once"
