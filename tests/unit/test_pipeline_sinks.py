"""Which sinks a Databricks pipeline delivers itself, and `sinks publish` after it leaving exactly those
alone: a streaming table's `append` Delta copies and Kafka topics (`dp.create_sink`) and python sinks
(`foreach_batch_sink`); a materialized view's, a `merge` copy and Lakebase are the job's `sinks publish`
task's."""
from __future__ import annotations

import dataclasses

from pipelines.catalog.sinks import SinkRun
from pipelines.consumers.sinks import TableSinks
from pipelines.core.config import load_config
from pipelines.core.plan import build_plan
from pipelines.core.results import TableResult
from pipelines.core.seam import table_reader
from pipelines.core.sinks import delivered_in_pipeline
from pipelines.core.vocabulary import TableStatus
from tests.conftest import write_project

CONFIG = """
pipeline: {schema: s, transformations: ./transformations}
tables:
  - name: events
    layer: bronze
    source: {type: files, format: csv, path: ./in, schema: "id INT"}
    sinks:
      - {type: delta, path: ./copies/log, mode: append}
      - {type: delta, path: ./copies/merged, mode: merge, keys: [id]}
      - {type: kafka, bootstrap_servers: 'broker:9092', topic: events_out}
      - {type: lakebase, schema: app, mode: upsert, primary_key: [id]}
      - {type: python, module: audit}
"""


class Rows:
    """What a python sink's function is handed: a stored table's rows, without DQX's columns."""

    columns = ["id"]

    def colRegex(self, pattern: str) -> str:
        return pattern

    def select(self, *columns: str) -> "Rows":
        return self

    def count(self) -> int:
        return 2


def test_a_streaming_tables_python_sinks_are_the_pipelines_and_publish_leaves_them(tmp_path):
    config = load_config(write_project(tmp_path, CONFIG, {}))
    streaming, batch = (build_plan(config, mode=mode).tables[0] for mode in ("streaming", "batch"))
    assert [(s.type, s.write_mode) for s in delivered_in_pipeline(streaming.config.sinks, streaming.output.appends)] == [
        ("delta", "append"), ("kafka", "publish"), ("python", "foreach_batch")]
    assert delivered_in_pipeline(batch.config.sinks, batch.output.appends) == []

    calls: list[int] = []
    python_only = streaming.config.model_copy(update={"sinks": streaming.config.sinks[-1:]})

    def publish(table, skip: bool) -> TableResult:
        run = SinkRun("job-run-1", functions={"audit.write": lambda df, batch_id: calls.append(batch_id)},
                      state=tmp_path / ".ldp")
        result = TableResult(table.name, "bronze", TableStatus.SUCCESS)
        TableSinks(run, skip_pipeline_delivered=skip).on_table_written(
            dataclasses.replace(table, config=python_only), result,
            table_reader(lambda: Rows(), lambda after: (Rows(), 4)))
        return result

    assert publish(streaming, skip=True).sinks is None and calls == []  # the pipeline delivered it
    assert [s["status"] for s in publish(batch, skip=True).sinks] == ["success"] and calls == [0]
    assert [s["rows"] for s in publish(streaming, skip=False).sinks] == [2] and calls == [0, 1]  # locally
