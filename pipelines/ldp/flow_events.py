"""Reading pipeline flow events ("Flow 'x' has COMPLETED."), the same on open-source SDP and Databricks."""
from __future__ import annotations

import re

from pipelines.core.vocabulary import unquoted

# a flow's terminal state -> the table status of the run summaries
FLOW_STATUS = {"COMPLETED": "success", "FAILED": "failed", "STOPPED": "failed", "SKIPPED": "skipped",
               "EXCLUDED": "skipped"}
_FLOW = re.compile(r"^Flow '?`?([^'\s]+?)`?'? ")
_STATE = re.compile(r"\b(?:(?:is|has) ([A-Z_]+)|(SKIPPED))\b")


def dataset_name(flow: str) -> str:
    """`spark_catalog`.`retail`.`t` or spark_catalog.retail.t -> t."""
    return unquoted(flow).rsplit(".", 1)[-1]


def flow_in(message: str) -> str | None:
    """The dataset a flow message is about ("Flow spark_catalog.retail.t is RUNNING." -> t)."""
    match = _FLOW.match(message)
    return dataset_name(match.group(1)) if match else None


def state_in(message: str) -> str | None:
    """The state a flow message reports: QUEUED, RUNNING, COMPLETED, FAILED, SKIPPED, ..."""
    match = _STATE.search(message)
    return (match.group(1) or match.group(2)) if match else None
