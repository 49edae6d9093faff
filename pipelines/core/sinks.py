"""Sink specs: what an entry of a table's `sinks:` may say, one class per `type:`, in one registry.

A sink copies a finished table to another system after the table is written (the after-table seam).
A new sink type is one `SinkSpec` subclass with a one-value `type: Literal[...]`, decorated with
`@register_sink`, plus its writer registered under the same type in `pipelines.catalog.sinks` (the
Spark side; this module stays pure). Built in: `type: lakebase` (`core.lakebase`), `type: delta`
(`core.delta_sink`), `type: kafka` (`core.kafka_sink`) and `type: python` (`core.python_sink`).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainValidator, SerializeAsAny

from .cdc import START_AT
from .registry import TypeRegistry

RUN_ID_COLUMN = "_ldp_run_id"  # an `append` sink's rows: the run that wrote them (a retry replaces its own)


class SinkSpec(BaseModel):
    """One sink type's config: validated by pydantic, asked (not isinstance-checked) where it writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    def target(self, table_name: str) -> str:
        """Where the rows of table `table_name` go, as the run summary and the inventory name it."""
        raise NotImplementedError(f"{type(self).__name__} must say where it writes")

    @property
    def write_mode(self) -> str:
        """How a write treats what the target held before (the summary's `mode`)."""
        return "append"

    @property
    def takes_new_rows(self) -> bool:
        """Whether a streaming table hands it only the rows it has not had yet, as a Lakeflow sink's
        append flow does: every mode but `replace`, which would keep only those."""
        return self.write_mode != "replace"

    @property
    def lakeflow_sink(self) -> str | None:
        """The `dp` function through which a Databricks pipeline delivers this sink of a streaming table
        itself, fed by an append flow (each new row once, kept by the flow's checkpoint); None: the
        job's `sinks publish` task writes it after the update."""
        return None

    @property
    def local_packages(self) -> tuple[str, ...]:
        """Maven packages local Spark needs to write this sink (on Databricks the runtime has them)."""
        return ()

    @property
    def writes_over_connect(self) -> bool:
        """Whether a local Spark Connect session can write it (the SDP runner's consumers use the run's
        own server): its writer needs no API a local server lacks."""
        return True

    def cdc_problem(self, stored_as_scd_type: int, removes_rows: bool) -> str | None:
        """Why this sink cannot copy a CDC table (None if it can). A CDC table's rows change in place
        (and type 1's go away on a delete), so a copy that only adds rows would hold stale ones."""
        if self.write_mode == "append":
            return ("mode 'append' copies each run's rows, but a CDC table's rows are updated in place: "
                    "the copy would duplicate them (use mode: replace)")
        return None


def keyed_copy_problem(mode: str, keys_field: str, keys: tuple[str, ...], stored_as_scd_type: int,
                       removes_rows: bool) -> str | None:
    """Why a copy that updates rows by `keys` and never deletes (an upsert, a merge) cannot mirror a
    CDC table (None if it can): type 2 holds a row per key and version, and a removed row would stay."""
    if stored_as_scd_type == 2 and START_AT not in keys:
        return (f"an SCD type 2 table holds a row per key and version: its {mode} {keys_field} must "
                f"include {START_AT} ({keys_field}: [{', '.join(keys)}, {START_AT}])")
    if removes_rows:
        return (f"mode '{mode}' never deletes, but this CDC table deletes rows (apply_as_deletes, "
                "apply_as_truncates or a key gone from a snapshot): the copy would keep them "
                "(use mode: replace)")
    return None


def delivered_in_pipeline(sinks: tuple[SinkSpec, ...], appends: bool) -> list[SinkSpec]:
    """The sinks a Databricks pipeline delivers itself: a streaming table's (`appends`) with a Lakeflow
    sink of their kind. The registrar declares them; `sinks publish` there leaves them alone."""
    return [sink for sink in sinks if appends and sink.lakeflow_sink is not None]


SINKS: TypeRegistry[SinkSpec] = TypeRegistry("sink", SinkSpec)
register_sink = SINKS.register

SinkField = Annotated[SerializeAsAny[SinkSpec], PlainValidator(SINKS.validate)]  # dumped as its type

