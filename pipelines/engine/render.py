"""Human-readable views of plans, graphs and run results (the CLI prints them)."""
from __future__ import annotations

import json
from datetime import date, datetime

from pipelines.core.config import Config
from pipelines.core.plan import Plan
from pipelines.core.results import RunResult

_LAYERS = ("bronze", "silver", "gold")


def _count(value: object) -> str:
    return "-" if value is None else str(value)


def plan_text(plan: Plan) -> str:
    lines = [f"Pipeline '{plan.pipeline.name}' ({plan.mode} mode): {len(plan.tables)} table(s) "
             f"in {len(plan.levels)} level(s)"]
    for index, level in enumerate(plan.levels, start=1):
        lines.append(f"  level {index}:")
        for name in level:
            table = plan.table(name)
            tags = ", ".join(table.config.tags)
            extra = f"  reads existing: {', '.join(table.upstream_existing)}" if table.upstream_existing else ""
            lines.append(f"    - {name} [{table.layer}] {table.output.label}; tags: {tags or '-'}{extra}")
    return "\n".join(lines)


def mermaid(config: Config) -> str:
    lines = ["flowchart LR"]
    for layer in _LAYERS:
        tables = [t for t in config.tables if t.layer == layer]
        if tables:
            lines.append(f"  subgraph {layer}")
            for t in tables:
                tags = f"<br/><small>{', '.join(t.tags)}</small>" if t.tags else ""
                lines.append(f'    {t.name}["{t.name}{tags}"]')
            lines.append("  end")
    lines += [f"  {dep} --> {t.name}" for t in config.tables for dep in t.depends_on]
    return "\n".join(lines)


def dot(config: Config) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box];"]
    for layer in _LAYERS:
        tables = [t for t in config.tables if t.layer == layer]
        if tables:
            lines.append(f'  subgraph cluster_{layer} {{\n    label="{layer}";')
            for t in tables:
                label = t.name + (f"\\n[{', '.join(t.tags)}]" if t.tags else "")
                lines.append(f'    "{t.name}" [label="{label}"];')
            lines.append("  }")
    lines += [f'  "{dep}" -> "{t.name}";' for t in config.tables for dep in t.depends_on]
    lines.append("}")
    return "\n".join(lines)


def summary_text(run: RunResult) -> str:
    """A run result (any runner) as a table plus failed checks and problems."""
    if run.dry_run:  # a dry run of a pipeline: only a verdict and its problems
        return "\n".join([run.status.upper(), *[f"  {e}" for e in run.errors]])
    header = ("table", "layer", "status", "rows", "quarantined", "dropped", "seconds")
    rows = [(t.name, t.layer, t.status.value, _count(t.rows_written), _count(t.rows_quarantined),
             _count(t.rows_dropped), f"{t.seconds or 0:.1f}") for t in run.tables]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    failed_checks = [f"  {t.name}.{c.name} ({c.criticality}): {c.failed} row(s)"
                     for t in run.tables for c in t.checks or [] if c.failed]
    if failed_checks:
        lines += ["", "Failed checks:", *failed_checks]
    alerts = [f"  {t.name}: {a['metric']}({a['column']}) = {a['value']:.4g} {a['op']} {a['threshold']:g}"
              + (f" [{a['drift_type'].lower()} drift]" if a.get("drift_type") else "")
              for t in run.tables for a in (t.monitor or {}).get("alerts", [])]
    if alerts:
        lines += ["", "Monitor alerts:", *alerts]
    additive = [f"  {t.name}: {', '.join(t.new_columns)} (not in columns:, let through by contract: additive)"
                for t in run.tables if t.new_columns]
    if additive:
        lines += ["", "New columns:", *additive]
    changes = [f"  {t.name}: " + ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in t.changes.items())
               for t in run.tables if t.changes is not None]
    if changes:
        lines += ["", "Changes applied (CDC):", *changes]
    landed = [f"  {t.name}" + ("" if source == t.name else f".{source}") + f": {rows} new row(s) from the database"
              for t in run.tables for source, rows in t.landed.items()]
    if landed:
        lines += ["", "Landed (incremental database reads):", *landed]
    flows = [f"  {t.name}.{flow}: " + (f"{counts['rows_written']} row(s)" if counts.get("rows_written") is not None
                                         else "rows not reported")
             + (f", {counts['rows_quarantined']} quarantined" if counts.get("rows_quarantined") else "")
             + (f", {counts['rows_dropped']} dropped" if counts.get("rows_dropped") else "")
             for t in run.tables for flow, counts in (t.flows or {}).items()]
    if flows:
        lines += ["", "Flows:", *flows]
    sinks = [f"  {t.name} -> {s['target']} ({s['mode']}): " + (f"{s['rows']} row(s)" if s["status"] == "success"
                                                                else f"FAILED: {s['error']}")
             for t in run.tables for s in t.sinks or []]
    if sinks:
        lines += ["", "Sinks:", *sinks]
    elif run.details.get("sinks"):
        lines += ["", f"Sinks: {run.details['sinks']}"]
    errors = [f"  {t.name}: {t.error}" for t in run.tables if t.error]
    errors += [f"  {t.name}: {consumer} failed: {error}" for t in run.tables
               for consumer, error in t.consumer_errors.items()]
    errors += [f"  {e}" for e in run.errors]
    if str(run.details.get("inventory", "")).startswith("failed"):
        errors.append(f"  run inventory {run.details['inventory']} (the run's outcome is unchanged)")
    if errors:
        lines += ["", "Problems:", *errors]
    ok = sum(t.succeeded for t in run.tables)
    lines += ["", f"{run.status.upper()}: {ok}/{len(run.tables)} table(s) succeeded"]
    return "\n".join(lines)


def rows_text(columns: list[str], rows: list[dict[str, object]], width: int = 40) -> str:
    """Rows as an aligned text table; long values are cut to `width` characters."""
    def cell(value: object) -> str:
        text = "null" if value is None else _plain(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    body = [[cell(row.get(name)) for name in columns] for row in rows]
    widths = [max([len(name), *(len(r[i]) for r in body)]) for i, name in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*columns), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)]
    return "\n".join(line.rstrip() for line in lines + [f"({len(rows)} row(s))"])


def _plain(value: object) -> str:
    """A value as a reader writes it: timestamps in ISO form, structs and arrays as compact JSON."""
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_plain, separators=(",", ":"), ensure_ascii=False)
    return str(value)
