"""Inline SVG pictures for the run report: the plan's DAG by layer, a quantile strip, a sparkline.
Each returns markup with a text alternative (`role="img"` and `aria-label`), drawn by the engine: no
charting library, nothing fetched."""
from __future__ import annotations

from html import escape
from typing import Any, Sequence

LAYERS = ("bronze", "silver", "gold")
STATUS_COLOURS = {"success": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700", "pending": "#6e7781"}
_NODE_W, _NODE_H, _COL_GAP, _ROW_GAP = 190, 44, 90, 18


def dag(graph: dict[str, dict[str, Any]], status: dict[str, str], errors: dict[str, str] | None = None) -> str:
    """Tables in one column per layer, edges from each upstream table, boxes coloured by status; a box's
    tooltip carries its error (a skipped table's names the failure that skipped it)."""
    columns = [[name for name, node in graph.items() if node["layer"] == layer] for layer in LAYERS]
    columns = [c for c in columns if c]
    place: dict[str, tuple[float, float]] = {}
    for i, names in enumerate(columns):
        for j, name in enumerate(names):
            place[name] = (10 + i * (_NODE_W + _COL_GAP), 30 + j * (_NODE_H + _ROW_GAP))
    width = 20 + len(columns) * (_NODE_W + _COL_GAP) - _COL_GAP
    height = 40 + max((len(c) for c in columns), default=1) * (_NODE_H + _ROW_GAP)
    parts = [f'<text x="{10 + i * (_NODE_W + _COL_GAP)}" y="18" class="layer">{escape(graph[c[0]]["layer"])}</text>'
             for i, c in enumerate(columns)]
    for name, node in graph.items():
        for upstream in node.get("depends_on", []):
            if upstream in place and name in place:
                (x1, y1), (x2, y2) = place[upstream], place[name]
                x1, y1, y2 = x1 + _NODE_W, y1 + _NODE_H / 2, y2 + _NODE_H / 2
                middle = (x1 + x2) / 2
                parts.append(f'<path d="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}" class="edge"/>')
    for name, (x, y) in place.items():
        state = status.get(name, "pending")
        colour = STATUS_COLOURS.get(state, STATUS_COLOURS["pending"])
        why = f" ({(errors or {}).get(name)})" if (errors or {}).get(name) else ""
        parts.append(f'<g><title>{escape(name)}: {escape(state)}{escape(why)}</title>'
                     f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6" fill="{colour}"/>'
                     f'<text x="{x + 10}" y="{y + 19}" class="node">{escape(name)}</text>'
                     f'<text x="{x + 10}" y="{y + 35}" class="state">{escape(state)}</text></g>')
    label = "; ".join(f"{name} ({status.get(name, 'pending')})" for name in graph)
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="Pipeline graph: {escape(label)}" class="dag">{"".join(parts)}</svg>')


def quantile_strip(quartiles: Sequence[float] | None, width: int = 160) -> str:
    """Min, quartiles and max on one line: whiskers, a box from the 25th to the 75th, the median."""
    if not quartiles or any(q is None for q in quartiles):
        return ""
    low, high = quartiles[0], quartiles[-1]
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return 4 + (value - low) / span * (width - 8)

    q0, q1, q2, q3, q4 = (x(q) for q in quartiles)
    label = "min {:g}, 25% {:g}, median {:g}, 75% {:g}, max {:g}".format(*quartiles)
    return (f'<svg viewBox="0 0 {width} 18" width="{width}" height="18" role="img" aria-label="{escape(label)}">'
            f'<line x1="{q0:.1f}" y1="9" x2="{q4:.1f}" y2="9" class="whisker"/>'
            f'<rect x="{q1:.1f}" y="3" width="{max(q3 - q1, 1):.1f}" height="12" class="box"/>'
            f'<line x1="{q2:.1f}" y1="2" x2="{q2:.1f}" y2="16" class="median"/></svg>')


def sparkline(values: Sequence[float | None], label: str, width: int = 120, height: int = 24) -> str:
    """A small trend line of the last runs, oldest first; the newest point marked."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span, steps = (high - low) or 1.0, max(len(values) - 1, 1)
    xy = [(3 + i / steps * (width - 6), height - 3 - (v - low) / span * (height - 6)) for i, v in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    text = f"{label}: " + ", ".join(f"{v:g}" for _, v in points)
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(text)}"><polyline points="{path}" class="trend"/>'
            f'<circle cx="{xy[-1][0]:.1f}" cy="{xy[-1][1]:.1f}" r="2.5" class="last"/></svg>')
