"""`ldp_engine report`: a run's HTML report rendered again from what the run recorded
(`{state}/reports/{run_id}.json`, else its run record `{state}/runs/{run_id}.json`, without samples).
Every runner records its runs there (the SDP runner too, whose tables live under `{state}/sdp`): `latest`
is the most recent run, whichever runner made it, and stderr says which run that was."""
from __future__ import annotations

import json
import webbrowser
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from pipelines.core.errors import EXIT_OK, Problem, UsageError

from . import params
from .options import handle_errors


@click.command()
@click.option("--run", "run_id", default="latest", show_default=True, help="The run's id, or latest.")
@click.option("--output", type=click.Path(dir_okay=False), help="Where to write the page "
              "[default: {state}/reports/{run_id}.html].")
@click.option("--open", "open_it", is_flag=True, help="Open the page in the default browser.")
@params.state_dir
@params.verbose
@handle_errors
def report(run_id: str, output: str | None, open_it: bool, state_dir: str | None, verbose: bool) -> int:
    """Write a run's report page again (any runner's run) and print its path."""
    from pipelines.catalog.session import state_dir as resolve_state
    from pipelines.report.history import from_records
    from pipelines.report.html import render

    state = resolve_state(state_dir)
    if run_id == "latest":
        run_id = _read(state / "runs" / "latest.json", run_id, state)["run_id"]
    saved = state / "reports" / f"{run_id}.json"
    if saved.is_file():
        data = _read(saved, run_id, state)
    else:  # a run from before reports: its record has the summary and the plan's order, not the graph
        record = _read(state / "runs" / f"{run_id}.json", run_id, state)
        tables = record["summary"].get("tables", [])
        data = {**{k: record.get(k) for k in ("run_id", "pipeline", "mode", "started_at", "finished_at")},
                "run": record["summary"], "samples": {},
                "graph": {t["name"]: {"layer": t["layer"], "depends_on": []} for t in tables},
                "history": from_records(state / "runs", [t["name"] for t in tables], before=record["started_at"] + 1e-3)}
    page = Path(output) if output else state / "reports" / f"{run_id}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render(data), encoding="utf-8")
    click.echo(describe_run(data), err=True)
    click.echo(str(page))
    if open_it:
        webbrowser.open(page.resolve().as_uri())
    return EXIT_OK


def describe_run(data: dict[str, Any]) -> str:
    """One line: the run the page shows, its runner and when it finished."""
    finished = data.get("finished_at")
    when = "" if finished is None else \
        f", finished {datetime.fromtimestamp(finished, timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}"
    return f"report of run {data.get('run_id')} ({(data.get('run') or {}).get('runner', 'spark')} runner{when})"


def _read(path: Path, run_id: str, state: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.stem for p in (state / "runs").glob("*.json") if p.name != "latest.json")
        raise UsageError(Problem("no such run in this state folder", value=run_id, hint=(
            f"runs: {', '.join(known[-5:])}" if known else f"no run recorded under {state} yet"))) from None
