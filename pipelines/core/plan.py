"""The plan: config in, immutable execution plan out. Pure Python; runners consume it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Literal

import networkx as nx

from ._gc import paused_gc
from .config import Config, PipelineSettings, TableConfig
from .errors import ConfigError, Problem
from .graph import Selection, cycle_problems, dependency_graph, select_tables, topological_levels
from .outputs import (AppendFlow, AutoCdcFlow, AutoCdcFromSnapshotFlow, CdcTarget, Flow, MaterializedView, Output,
                      QueryFlow, SnapshotCdcTarget, StreamingTable)

Mode = Literal["batch", "streaming"]


# output kind -> the kind of the one flow that writes it (a query by default)
FLOW_KINDS: dict[type[Output], type[Flow]] = {CdcTarget: AutoCdcFlow, SnapshotCdcTarget: AutoCdcFromSnapshotFlow}


@dataclass(frozen=True)
class TablePlan:
    """One table to materialize, with its inputs split into planned and already-existing ones; `output`
    is its kind (what every runner asks to know how to define or write it), `flows` what writes it."""

    config: TableConfig
    level: int
    upstream_in_plan: tuple[str, ...]
    upstream_existing: tuple[str, ...]
    output: Output = MaterializedView()
    flows: tuple[Flow, ...] = ()

    def __post_init__(self) -> None:
        if not self.flows:  # one flow named after the table, as `@dp.table` (or an AUTO CDC flow) defines it
            flow = FLOW_KINDS.get(type(self.output), QueryFlow)
            object.__setattr__(self, "flows", (flow(self.config.name, self.config.name),))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def append_flows(self) -> tuple[AppendFlow, ...]:
        """The flows appending into the table (`flows:` in streaming mode), in config order."""
        return tuple(f for f in self.flows if isinstance(f, AppendFlow))

    def flow_plan(self, flow: str) -> "TablePlan":
        """How one of the table's `flows:` reads: its inputs, as streams unless it runs `once` (or the
        table is a materialized view, in batch mode)."""
        spec = next(f for f in self.config.flows if f.name == flow)
        output = StreamingTable() if self.output.reads_stream and not spec.once else MaterializedView()
        return TablePlan(self.config.flow_config(spec), self.level, self.upstream_in_plan, self.upstream_existing,
                         output, flows=(QueryFlow(flow, self.name),))

    @property
    def streaming(self) -> bool:
        """Whether the table's flows read their inputs as streams (derived from its output kind)."""
        return self.output.reads_stream

    @property
    def layer(self) -> str:
        return self.config.layer


@dataclass(frozen=True)
class Plan:
    """Ordered tables to run; `levels` are sets of tables with no dependency between them."""

    config: Config
    mode: Mode
    selection: Selection
    tables: tuple[TablePlan, ...]
    levels: tuple[tuple[str, ...], ...]
    existing_inputs: tuple[str, ...] = field(default=())

    @cached_property
    def order(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    @cached_property
    def _by_name(self) -> dict[str, TablePlan]:
        return {t.name: t for t in self.tables}

    @property
    def selects_everything(self) -> bool:
        """Every table of the config is planned (so an update need not name a refresh selection)."""
        return len(self.tables) == len(self.config.tables)

    @property
    def pipeline(self) -> PipelineSettings:
        return self.config.pipeline

    def table(self, name: str) -> TablePlan:
        return self._by_name[name]

    @cached_property
    def local_packages(self) -> tuple[str, ...]:
        """Maven packages local Spark needs for the planned tables' sources (their flows' too) and
        sinks (a JDBC driver, Kafka's connector), sorted."""
        return tuple(sorted({package for t in self.tables for spec in t.config.connectors
                             for package in spec.local_packages}))

    @cached_property
    def successors(self) -> dict[str, tuple[str, ...]]:
        """The planned tables that read each planned table, in plan order."""
        found: dict[str, list[str]] = {name: [] for name in self.order}
        for table in self.tables:
            for upstream in table.upstream_in_plan:
                found[upstream].append(table.name)
        return {name: tuple(children) for name, children in found.items()}

    def downstream_of(self, names: Iterable[str]) -> tuple[str, ...]:
        """`names` and every planned table reading them, directly or not, in plan order."""
        stack = list(names)
        found = set(stack)
        while stack:
            for child in self.successors[stack.pop()]:
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return tuple(name for name in self.order if name in found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline.name,
            "catalog": self.pipeline.catalog,
            "schema": self.pipeline.schema_name,
            "config": str(self.config.path),
            "mode": self.mode,
            "order": list(self.order),
            "levels": [list(level) for level in self.levels],
            "existing_inputs": list(self.existing_inputs),
            "tables": [
                {"name": t.name, "layer": t.layer, "level": t.level, "tags": list(t.config.tags),
                 "depends_on": list(t.config.depends_on), "output": t.output.kind,
                 "flows": [{"name": f.name, "kind": f.kind} for f in t.flows], "streaming": t.streaming,
                 "reads_existing": list(t.upstream_existing)}
                for t in self.tables
            ],
        }


def build_plan(config: Config, selection: Selection = Selection(), mode: Mode = "batch") -> Plan:
    """Check the graph, resolve the selection and order it; raise ConfigError on any problem."""
    with paused_gc():
        return _build(config, selection, mode)


def _build(config: Config, selection: Selection, mode: Mode) -> Plan:
    graph, problems = dependency_graph(config)
    try:  # the topological sort doubles as the cycle check; cycle paths only when it fails
        all_levels = topological_levels(graph)
    except nx.NetworkXUnfeasible:
        problems += cycle_problems(config, graph)
    if mode == "streaming":
        problems += [p for index, table in enumerate(config.tables) for p in flow_problems(config, table, index)]
    if problems:
        raise ConfigError(problems)
    selected = select_tables(config, graph, selection)
    everything = len(selected) == len(graph)
    levels = all_levels if everything else topological_levels(graph, selected)
    by_name = config.by_name
    tables = []
    existing: set[str] = set()
    for level_index, level in enumerate(levels):
        for name in level:
            table = by_name[name]
            deps = table.depends_on
            outside = () if everything else tuple(d for d in deps if d not in selected)
            existing.update(outside)
            tables.append(TablePlan(
                config=table, level=level_index,
                upstream_in_plan=deps if not outside else tuple(d for d in deps if d in selected),
                upstream_existing=outside,
                output=planned_output(table, mode), flows=planned_flows(table, mode)))
    return Plan(config=config, mode=mode, selection=selection, tables=tuple(tables),
                levels=levels, existing_inputs=tuple(sorted(existing)))


def planned_output(table: TableConfig, mode: Mode) -> Output:
    """A table's kind: in streaming mode a table whose source can stream (files) reads it incrementally
    into a streaming table; a table with `cdc:` (`snapshot_cdc:`) is a (snapshot) CDC target; every other table is a materialized
    view over its inputs."""
    if table.cdc is not None:
        return CdcTarget(table.cdc.stored_as_scd_type)
    if table.snapshot_cdc is not None:
        return SnapshotCdcTarget(table.snapshot_cdc.stored_as_scd_type)
    if mode == "streaming" and (table.flows or table.source is not None and table.source.can_stream):
        return StreamingTable()
    return MaterializedView()


def planned_flows(table: TableConfig, mode: Mode) -> tuple[Flow, ...]:
    """A table with `flows:` in streaming mode: one append flow each. In batch mode (and for every other
    table) the default: one query flow named after the table (with flows, the union of theirs)."""
    if mode != "streaming":
        return ()
    return tuple(AppendFlow(flow.name, table.name, once=flow.once) for flow in table.flows)


def flow_problems(config: Config, table: TableConfig, index: int) -> list[Problem]:
    """In streaming mode an append flow (not `once`) reads its inputs as streams: a source that can
    stream, or upstream tables that only ever grow (streaming tables)."""
    problems = []
    for flow in (f for f in table.flows if not f.once):
        if flow.source is not None and not flow.source.can_stream:
            problems.append(Problem(
                f"flow '{flow.name}' appends what is new in its source, and a {flow.source.type} source "
                "cannot be read as a stream", file=str(config.path), table=table.name, key="flows.source.type",
                value=flow.source.type, hint="read it as a once: true backfill, or from a source that streams",
                index=index))
        for upstream in (config.by_name.get(name) for name in flow.depends_on):
            if upstream is not None and not planned_output(upstream, "streaming").appends:
                problems.append(Problem(
                    f"flow '{flow.name}' reads {upstream.name} as a stream, but {upstream.name} is replaced on "
                    "each run (a materialized view), not appended to", file=str(config.path), table=table.name,
                    key="flows.depends_on", value=upstream.name,
                    hint="read a streaming table, or make the flow once: true", index=index))
    return problems
