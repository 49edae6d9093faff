"""One run as one self-contained HTML page: the DAG, every table's outcome and error, data quality per
check with a sample of quarantined rows, profiles and drift with fired alerts, sinks, and each table's
recent history. Pure: `render(data)` turns the report data (see `consumers.report`) into text; every
value from the data is escaped.

    data = {"run": <the run's JSON summary>, "run_id", "pipeline", "mode", "started_at", "finished_at",
            "graph": {table: {"layer", "depends_on"}}, "samples": {table: {"columns", "rows"}},
            "planned": [{"table", "action", "destructive", "details"}] | why there is none,
            "history": {table: [{"run_id", "started_at", "status", "rows_written", "seconds",
                                 "failure_rates": {check: share of failing rows}}]}}
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import Any

from .svg import STATUS_COLOURS, dag, quantile_strip, sparkline

ALERT = ' class="alert"'

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#59636e}.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:4px 0 8px}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}caption{text-align:left;color:#59636e;font-size:12px}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#fff8f8;border:1px solid #f5c2c7;padding:6px;margin:4px 0}
.bar{background:#eaeef2;width:160px;height:10px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:10px;background:#cf222e}.bar.warn span{background:#9a6700}
tr.alert td{background:#fff1e5;font-weight:600}.dag .edge{fill:none;stroke:#8c959f;stroke-width:1.5}
.dag text{fill:#fff;font-size:13px}.dag .layer{fill:#59636e;font-weight:600;text-transform:uppercase;font-size:12px}
.dag .state{font-size:11px}.whisker{stroke:#59636e}.box{fill:#54aeff;stroke:#0969da}.median{stroke:#0a3069;stroke-width:2}
.trend{fill:none;stroke:#0969da;stroke-width:1.5}.last{fill:#0969da}
@media (max-width:700px){body{padding:8px}th,td{padding:2px 4px}}
"""


def render(data: dict[str, Any]) -> str:
    run = data["run"]
    tables = run.get("tables", [])
    status = {t["name"]: t["status"] for t in tables}
    errors = {t["name"]: t["error"] for t in tables if t.get("error")}
    sections = [
        _header(data, run),
        _section("Graph", "graph", '<div class="scroll">' + dag(data.get("graph", {}), status, errors) + "</div>"),
        _section("Tables", "tables", _tables(tables) + _run_errors(run)),
        _section("Plan", "plan", _planned(data.get("planned"), run.get("runner"))),
        _section("Data quality", "quality", _quality(tables, data.get("samples", {}))),
        _section("Profiles and drift", "profiles", _profiles(tables)),
        _section("Sinks", "sinks", _sinks(tables, run)),
        _section("History", "history", _history(data.get("history", {}))),
    ]
    title = f"{data.get('pipeline', 'pipeline')} run {data.get('run_id', '')}: {run.get('status', '')}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            f"img-src data:\"><title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(sections) + "</body></html>")


def _header(data: dict[str, Any], run: dict[str, Any]) -> str:
    state = run.get("status", "unknown")
    started, finished = data.get("started_at"), data.get("finished_at")
    took = f" · {finished - started:.1f} s" if started and finished else ""
    counts: dict[str, int] = {}
    for table in run.get("tables", []):
        counts[table["status"]] = counts.get(table["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return (f'<header><h1>{escape(str(data.get("pipeline", "pipeline")))} '
            f'{_badge(state)}</h1><p class="meta">run <code>{escape(str(data.get("run_id", "")))}</code> · '
            f'{escape(str(run.get("runner", "")))} runner · {escape(str(data.get("mode", "")))} mode · '
            f'started {_time(started)}{took} · {escape(summary)}</p>'
            + (f'<p class="meta">Run record: {escape(str(run["run_record"]))}</p>' if run.get("run_record") else "")
            + "</header>")


def _tables(tables: list[dict[str, Any]]) -> str:
    rows = []
    for t in tables:
        error = f"<details open><summary>error</summary>{_error(t['error'])}</details>" if t.get("error") else ""
        consumers = "".join(f"<pre>{escape(k)}: {escape(v)}</pre>" for k, v in (t.get("consumers") or {}).items())
        if t.get("new_columns"):  # what an additive contract let through: a consumer may want them declared
            consumers += (f'<p class="meta">new columns, not in columns: (additive contract): '
                          f'{escape(", ".join(t["new_columns"]))}</p>')
        rows.append(f'<tr id="table-{escape(t["name"])}"><th scope="row">{escape(t["name"])}</th><td>{escape(t["layer"])}</td>'
                    f'<td>{_badge(t["status"])}</td><td class="n">{_count(t.get("rows_written"))}</td>'
                    f'<td class="n">{_count(t.get("rows_quarantined"))}</td><td class="n">{_count(t.get("rows_dropped"))}</td>'
                    f'<td class="n">{t.get("seconds") or 0:.1f}</td><td>{error}{consumers}</td></tr>')
    return _table(["table", "layer", "status", "rows", "quarantined", "dropped", "seconds", "error"], rows,
                  caption="Tables of this run")


def _run_errors(run: dict[str, Any]) -> str:
    errors = run.get("errors") or []
    notes = [f"{key}: {run[key]}" for key in ("inventory", "sinks") if isinstance(run.get(key), str)]
    return "".join(f"<pre>{escape(e)}</pre>" for e in errors) + "".join(f'<p class="meta">{escape(n)}</p>' for n in notes)


def _quality(tables: list[dict[str, Any]], samples: dict[str, Any]) -> str:
    parts = []
    for t in tables:
        checks = t.get("checks") or []
        if not checks:
            continue
        total = sum(t.get(k) or 0 for k in ("rows_written", "rows_quarantined", "rows_dropped"))
        rows = []
        for check in checks:
            failed = check.get("failed")
            share = (failed or 0) / total if total else 0.0
            bar = (f'<span class="bar{" warn" if check["criticality"] == "warn" else ""}" role="img" '
                   f'aria-label="{failed} of {total} rows"><span style="width:{share * 100:.1f}%"></span></span>')
            rows.append(f'<tr><th scope="row">{escape(check["name"])}</th><td>{escape(check["criticality"])}</td>'
                        f'<td class="n">{_count(failed)}</td><td class="n">{share * 100:.1f}%</td><td>{bar}</td></tr>')
        parts.append(f"<h3>{escape(t['name'])} <small class=\"meta\">({total} rows checked)</small></h3>"
                     + _table(["check", "criticality", "failed rows", "share", ""], rows,
                              caption=f"Checks of {t['name']}"))
        sample = samples.get(t["name"])
        if sample and sample.get("rows"):
            head = [escape(c) for c in sample["columns"]]
            body = ["<tr>" + "".join(f"<td>{escape(_plain(v))}</td>" for v in row) + "</tr>" for row in sample["rows"]]
            parts.append(f"<details open><summary>{len(sample['rows'])} quarantined row(s) of "
                         f"{escape(t['name'])}_quarantine, with their _errors</summary>"
                         + _table(head, body, escaped=True, caption=f"Quarantined rows of {t['name']}")
                         + "</details>")
    return "".join(parts) or '<p class="meta">No table of this run has checks.</p>'


def _profiles(tables: list[dict[str, Any]]) -> str:
    parts = []
    for t in tables:
        monitor = t.get("monitor")
        if not monitor or not monitor.get("columns"):
            continue
        alerts = monitor.get("alerts") or []
        fired = {(a["column"], a["metric"].split(".")[0]) for a in alerts}
        rows = [f'<tr><th scope="row">{escape(c["column"])}</th><td>{escape(str(c.get("type") or ""))}</td>'
                f'<td class="n">{_pct(c.get("percent_null"))}</td><td class="n">{_pct(c.get("percent_distinct"))}</td>'
                f'<td class="n">{_value(c.get("min"))}</td><td class="n">{_value(c.get("max"))}</td>'
                f'<td class="n">{_value(c.get("avg"))}</td><td>{quantile_strip(c.get("quantiles"))}</td></tr>'
                for c in monitor["columns"]]
        parts.append(f"<h3>{escape(t['name'])} <small class=\"meta\">window {escape(str(monitor.get('window', '')))}"
                     f"</small></h3>" + _table(["column", "type", "null %", "distinct %", "min", "max", "mean",
                                                "quantiles (min · 25% · median · 75% · max)"], rows,
                                               caption=f"Profile of {t['name']}"))
        drift = monitor.get("drift") or []
        if drift:
            metrics = sorted({k for d in drift for k in d if k not in ("column", "drift_type")})
            body = []
            for d in drift:
                hit = any((d["column"], m) in fired for m in metrics if m in d)
                body.append(f'<tr{ALERT if hit else ""}><th scope="row">{escape(d["column"])}</th>'
                            f'<td>{escape(d["drift_type"].lower())}</td>'
                            + "".join(f'<td class="n">{_value(d.get(m))}</td>' for m in metrics) + "</tr>")
            parts.append(_table(["column", "against", *metrics], body, caption=f"Drift of {t['name']}"))
        if alerts:
            parts.append("<ul>" + "".join(
                f'<li class="alert"><strong>alert</strong>: {escape(a["metric"])}({escape(a["column"])}) = '
                f'{_value(a["value"])} {escape(a["op"])} {_value(a["threshold"])}'
                + (f' [{escape(a["drift_type"].lower())} drift]' if a.get("drift_type") else "") + "</li>"
                for a in alerts) + "</ul>")
    return "".join(parts) or '<p class="meta">No table of this run has a monitor.</p>'


def _sinks(tables: list[dict[str, Any]], run: dict[str, Any]) -> str:
    rows = [f'<tr><th scope="row">{escape(t["name"])}</th><td>{escape(s["target"])}</td><td>{escape(s["mode"])}</td>'
            f'<td class="n">{_count(s.get("rows"))}</td><td>{_badge(s["status"])}</td>'
            f'<td>{_error(s.get("error"))}</td></tr>' for t in tables for s in t.get("sinks") or []]
    if not rows:
        note = run.get("sinks") if isinstance(run.get("sinks"), str) else "No table of this run has a sink."
        return f'<p class="meta">{escape(note)}</p>'
    return _table(["table", "target", "mode", "rows", "status", "error"], rows, caption="Sink writes")


_PLAN_COLOURS = {"create": "success", "unchanged": "pending"}  # destructive: red; other changes: amber


def _planned(planned: list[dict[str, Any]] | str | None, runner: str | None) -> str:
    """What the run was to change in its catalog, as `ldp_engine plan` said just before it started."""
    if planned is None and runner == "pipeline":
        return '<p class="meta">No local plan: a Databricks pipeline update changes the workspace\'s tables.</p>'
    if planned is None:
        return '<p class="meta">No plan was recorded for this run.</p>'
    if isinstance(planned, str):
        return f'<p class="meta">{escape(planned)}</p>'
    rows = [f'<tr><th scope="row">{escape(c["table"])}</th>'
            f'<td>{_badge(_PLAN_COLOURS.get(c["action"], "failed" if c["destructive"] else "skipped"), c["action"])}</td>'
            f'<td>{"<br>".join(escape(d) for d in c["details"])}</td></tr>' for c in planned]
    return _table(["table", "change", "details"], rows, caption="Changes planned before the run")


def _history(history: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for name, runs in history.items():
        if not runs:
            continue
        states = " ".join(f'<span title="{escape(str(r["run_id"]))}" style="color:'
                          f'{STATUS_COLOURS.get(r["status"], "#6e7781")}">●</span>' for r in runs)
        rows.append(f'<tr><th scope="row">{escape(name)}</th><td>{len(runs)}</td><td>{states}</td>'
                    f'<td>{sparkline([r.get("rows_written") for r in runs], f"{name} rows")}</td>'
                    f'<td>{sparkline([r.get("seconds") for r in runs], f"{name} seconds")}</td></tr>')
    if not rows:
        return '<p class="meta">No earlier runs recorded.</p>'
    return (_table(["table", "runs", "status, oldest first", "rows", "seconds"], rows, caption="Recent runs")
            + _failure_rates(history))


def _failure_rates(history: dict[str, list[dict[str, Any]]]) -> str:
    """Each check's failure rate (% of the rows it saw) over the recent runs, the newest last."""
    rows = []
    for name, runs in history.items():
        checks = dict.fromkeys(check for run in runs for check in run.get("failure_rates") or {})
        for check in checks:
            rates = [(run.get("failure_rates") or {}).get(check) for run in runs]
            percents = [None if rate is None else round(100 * rate, 2) for rate in rates]
            last = next((p for p in reversed(percents) if p is not None), None)
            rows.append(f'<tr><th scope="row">{escape(name)}</th><td>{escape(check)}</td>'
                        f'<td class="n">{sum(p is not None for p in percents)}</td>'
                        f'<td>{sparkline(percents, f"{name} {check} failure %")}</td>'
                        f'<td class="n">{_pct(last)}</td></tr>')
    if not rows:
        return ""
    return _table(["table", "check", "runs", "failure %, oldest first", "last %"], rows,
                  caption="Check failure rates")


def _error(text: str | None) -> str:
    return f"<pre>{escape(text)}</pre>" if text else ""


def _section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2>{body}</section>'


def _table(head: list[str], rows: list[str], escaped: bool = False, caption: str = "") -> str:
    cells = "".join(f'<th scope="col">{h if escaped else escape(h)}</th>' for h in head)
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{title}<thead><tr>{cells}</tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></div>")


def _badge(state: str, text: str | None = None) -> str:
    """A coloured label: `state`'s colour, `text` (default: the state)."""
    return (f'<span class="badge" style="background:{STATUS_COLOURS.get(state, "#6e7781")}">'
            f'{escape(text or state)}</span>')


def _count(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1f}"


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _plain(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "null" if value is None else str(value)


def _time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "?"
