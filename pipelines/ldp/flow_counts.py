"""Each append flow's rows in one SDP run, read from the stored tables' Delta logs after the run.

The pipeline reports a flow's state, not its rows, and a table's counts (what it holds after less
before) cannot tell its flows apart. Its Delta log can: every streaming commit names the query that
wrote it (`operationParameters.queryId`) and the run (`userMetadata`, the run id the SDP runner sets),
and each flow's checkpoint folder (`{storage}/_checkpoints/{catalog}/{schema}/{table}/{flow}/{n}`)
holds its queries' ids (a full refresh starts a new `n`). No Spark: JSON files only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.catalog.reader import stored_table
from pipelines.core.plan import TablePlan

from .registrar import QUARANTINE_FLOW_SUFFIX, table_datasets


def flow_counts(catalog: Path, schema: str, table: TablePlan, run_id: str) -> dict[str, dict[str, int]] | None:
    """{flow: {rows_written, rows_quarantined, rows_dropped}} of run `run_id`, for a table with append
    flows (None for any other); a flow that appended nothing this run counts 0. `catalog` is the SDP
    runner's folder (`{state}/sdp`: its `warehouse/` and `storage/`)."""
    if not table.append_flows:
        return None
    datasets = table_datasets(table)
    written = _rows_by_flow(catalog, schema, datasets[0], run_id)
    quarantined = _rows_by_flow(catalog, schema, datasets[1], run_id) if len(datasets) > 1 else {}
    return {flow.name: {"rows_written": written.get(flow.name.lower(), 0),
                        "rows_quarantined": quarantined.get((flow.name + QUARANTINE_FLOW_SUFFIX).lower(), 0),
                        "rows_dropped": 0}  # as the table's: on_error drop keeps no count on SDP
            for flow in table.append_flows}


def _rows_by_flow(catalog: Path, schema: str, dataset: str, run_id: str) -> dict[str, int]:
    """{flow (lower case): rows its commits of the run added to `dataset`}."""
    stored = stored_table(catalog, schema, dataset)
    if stored is None:
        return {}
    flow_of = _flows_by_query(catalog / "storage" / "_checkpoints", schema, dataset)
    rows: dict[str, int] = {}
    for commit in stored.history():
        flow = flow_of.get(commit["query_id"] or "")
        if commit["run_id"] == run_id and flow is not None:
            rows[flow] = rows.get(flow, 0) + (commit["rows"] or 0)
    return rows


def _flows_by_query(checkpoints: Path, schema: str, dataset: str) -> dict[str, str]:
    """{query id: flow (lower case)} from the dataset's flows' checkpoint folders, whatever catalog."""
    found: dict[str, str] = {}
    for metadata in checkpoints.glob(f"*/{schema.lower()}/{dataset.lower()}/*/*/metadata"):
        query = _query_id(metadata)
        if query:
            found[query] = metadata.parent.parent.name.lower()
    return found


def _query_id(metadata: Path) -> str | None:
    try:
        info: Any = json.loads(metadata.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return info.get("id") if isinstance(info, dict) else None
