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


def dependency_graph(config: Config) -> tuple[nx.DiGraph, list[Problem]]:
    """The graph of known dependencies, plus the dependencies that name no table or a higher layer.

    One pass over every dependency: at 10,000 tables a second pass costs as much as the graph.
    """
    names = config.by_name
    edges: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for position, table in enumerate(config.tables):
        rank = LAYER_RANK[table.layer]
        for dep in table.depends_on:
            upstream = names.get(dep)
            if upstream is None:
                close = difflib.get_close_matches(dep, names, n=1)
                problems.append(Problem(
                    "depends_on names a table that is not defined in the config", file=str(config.path),
                    table=table.name, key="depends_on", value=dep, index=position,
                    hint=f"did you mean '{close[0]}'?" if close else None))
                continue
            if LAYER_RANK[upstream.layer] > rank:
                problems.append(Problem(
                    f"a {table.layer} table cannot depend on the {upstream.layer} table '{dep}'",
                    file=str(config.path), table=table.name, key="depends_on", value=dep, index=position,
                    hint="data flows bronze → silver → gold; move one of the tables to another layer"))
            edges.append((dep, table.name))
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    graph.add_edges_from(edges)
    return graph, problems


def cycle_problems(config: Config, graph: nx.DiGraph) -> list[Problem]:
    """One problem per cycle, printing its path (a → b → a)."""
    positions = {t.name: i for i, t in enumerate(config.tables)}
    problems = []
    for cycle in find_cycles(graph):
        path = " → ".join(cycle + [cycle[0]])
        problems.append(Problem(f"dependency cycle: {path}", file=str(config.path), table=cycle[0],
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


def split_names(value: str | None) -> tuple[str, ...]:
    """A comma-separated CLI or configuration value as names: `"a, b,"` -> ("a", "b")."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


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
        tags_of = {t.name: t.tags for t in config.tables}
        chosen = {n for n in chosen if test(set(tags_of[n]))}
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
        all_tags = sorted({tag for t in config.tables for tag in t.tags})
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


def topological_levels(graph: nx.DiGraph, selected: Iterable[str] | None = None
                       ) -> tuple[tuple[str, ...], ...]:
    """Groups of tables that may run together, in dependency order (sorted within a level).

    Raises networkx.NetworkXUnfeasible if the (sub)graph has a cycle.
    """
    chosen = set(graph) if selected is None else set(selected)
    sub = graph if len(chosen) == len(graph) else graph.subgraph(chosen).copy()  # views are slow
    return tuple(tuple(sorted(level)) for level in nx.topological_generations(sub))
