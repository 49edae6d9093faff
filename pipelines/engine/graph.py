"""The dependency graph: integrity checks, selection by tags/names, topological levels.

Pure networkx; no Spark. Edges point from an upstream table to the table that reads it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Literal

import networkx as nx

from .config import LAYER_RANK, Config
from .errors import ConfigError, Problem

Match = Literal["all", "any"]


def build_graph(config: Config) -> nx.DiGraph:
    """Nodes are table names (with their layer and tags); unknown dependencies are left out."""
    graph = nx.DiGraph()
    names = config.by_name
    for table in config.tables:
        graph.add_node(table.name, layer=table.layer, tags=table.tags)
    graph.add_edges_from((dep, table.name) for table in config.tables
                         for dep in table.depends_on if dep in names)
    return graph


def check_graph(config: Config, graph: nx.DiGraph) -> list[Problem]:
    """Unknown dependencies, dependencies on a higher layer, and cycles (with their path)."""
    file = str(config.path)
    names = config.by_name
    positions = {t.name: i for i, t in enumerate(config.tables)}
    problems: list[Problem] = []
    for table in config.tables:
        for dep in table.depends_on:
            upstream = names.get(dep)
            if upstream is None:
                close = difflib.get_close_matches(dep, names, n=1)
                problems.append(Problem(
                    "depends_on names a table that is not defined in the config", file=file,
                    table=table.name, key="depends_on", value=dep, index=positions[table.name],
                    hint=f"did you mean '{close[0]}'?" if close else None))
            elif LAYER_RANK[upstream.layer] > LAYER_RANK[table.layer]:
                problems.append(Problem(
                    f"a {table.layer} table cannot depend on the {upstream.layer} table '{dep}'",
                    file=file, table=table.name, key="depends_on", value=dep,
                    index=positions[table.name],
                    hint="data flows bronze → silver → gold; move one of the tables to another layer"))
    for cycle in find_cycles(graph):
        path = " → ".join(cycle + [cycle[0]])
        problems.append(Problem(f"dependency cycle: {path}", file=file, table=cycle[0],
                                key="depends_on", index=positions[cycle[0]],
                                hint="remove one of these dependencies"))
    return problems


def find_cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One cycle per strongly connected component, as the ordered list of its tables."""
    cycles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (node,) = component
            if not graph.has_edge(node, node):
                continue
        start = min(component)
        edges = nx.find_cycle(graph.subgraph(component), source=start)
        cycles.append([edge[0] for edge in edges])
    return sorted(cycles)


@dataclass(frozen=True)
class Selection:
    """What the user asked to run: tags (AND/OR), explicit names (+name = with upstream), exclusions."""

    tags: tuple[str, ...] = ()
    match: Match = "all"
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def is_everything(self) -> bool:
        return not (self.tags or self.select or self.exclude)


def select_tables(config: Config, graph: nx.DiGraph, selection: Selection) -> frozenset[str]:
    """Resolve a Selection on the graph; raise ConfigError if it names unknown tables or is empty."""
    names = set(graph.nodes)
    _check_known(config, names, [n.lstrip("+") for n in selection.select], "--select")
    _check_known(config, names, list(selection.exclude), "--exclude")
    chosen = set(names)
    if selection.tags:
        wanted = set(selection.tags)
        test = wanted.issubset if selection.match == "all" else (lambda tags: bool(wanted & tags))
        chosen = {n for n in chosen if test(set(graph.nodes[n]["tags"]))}
    if selection.select:
        named: set[str] = set()
        for item in selection.select:
            name = item.lstrip("+")
            named.add(name)
            if item.startswith("+"):
                named |= nx.ancestors(graph, name)
        chosen &= named
    chosen -= set(selection.exclude)
    if not chosen:
        all_tags = sorted({tag for n in names for tag in graph.nodes[n]["tags"]})
        raise ConfigError(Problem(
            f"the selection matches no table ({_describe(selection)})", file=str(config.path),
            hint=f"tags in the config: {', '.join(all_tags) or '(none)'}; "
                 f"tables: {', '.join(sorted(names))}"))
    return frozenset(chosen)


def _describe(selection: Selection) -> str:
    parts = []
    if selection.tags:
        joiner = " AND " if selection.match == "all" else " OR "
        parts.append("tags " + joiner.join(selection.tags))
    if selection.select:
        parts.append("select " + ",".join(selection.select))
    if selection.exclude:
        parts.append("exclude " + ",".join(selection.exclude))
    return "; ".join(parts)


def _check_known(config: Config, names: set[str], asked: Iterable[str], option: str) -> None:
    problems = []
    for name in asked:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            problems.append(Problem(f"{option} names an unknown table", file=str(config.path),
                                    value=name, hint=f"did you mean '{close[0]}'?" if close else None))
    if problems:
        raise ConfigError(problems)


def topological_levels(graph: nx.DiGraph, selected: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Groups of selected tables that may run together, in dependency order (sorted within a level)."""
    sub = graph.subgraph(selected)
    return tuple(tuple(sorted(level)) for level in nx.topological_generations(sub))
