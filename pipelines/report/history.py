"""Each table's recent runs, oldest first, from the run records under `{state}/runs/` (every runner
writes one): the report's trend lines when there is no run inventory to ask."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.core.results import history_entry

Runs = dict[str, list[dict[str, Any]]]


def from_records(folder: Path, tables: list[str], limit: int = 20, before: float | None = None) -> Runs:
    """The newest `limit` runs of each table (started before `before`, if given), oldest first."""
    records = sorted((p for p in folder.glob("*.json") if p.name != "latest.json"),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    found: Runs = {name: [] for name in tables}
    for path in records:
        if all(len(runs) >= limit for runs in found.values()):
            break
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a record being replaced, or not one of ours
        if before is not None and record.get("started_at", 0) >= before:
            continue
        for table in record.get("summary", {}).get("tables", []):
            runs = found.get(table["name"])
            if runs is not None and len(runs) < limit:
                runs.append(history_entry(record.get("run_id"), record.get("started_at"), table))
    return {name: sorted(runs, key=lambda r: r["started_at"] or 0) for name, runs in found.items()}
