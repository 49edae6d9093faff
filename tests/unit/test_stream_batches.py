"""`TableStore.for_each_batch` without Spark: a stream whose query hands its micro-batches over as
Spark's does (its checkpoint's metadata written when it starts, then one call per batch)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from pipelines.catalog import storage
from pipelines.catalog.storage import MicroBatch, TableStore
from pipelines.core.config import PipelineSettings, TableConfig


class Batch:
    def persist(self) -> "Batch":
        return self

    def unpersist(self) -> None:
        pass


class Stream:
    """`stream.writeStream.foreachBatch(f).trigger(...).option(...).start().awaitTermination()`."""

    def __init__(self, batch_ids: list[int], stream_id: str):
        self.batch_ids, self.stream_id, self.options = batch_ids, stream_id, {}
        self.writeStream = self

    def foreachBatch(self, each):  # noqa: N802 - pyspark's name
        self.each = each
        return self

    def trigger(self, **_: object) -> "Stream":
        return self

    def option(self, key: str, value: str) -> "Stream":
        self.options[key] = value
        return self

    def start(self) -> "Stream":
        checkpoint = Path(self.options["checkpointLocation"])
        checkpoint.mkdir(parents=True, exist_ok=True)
        (checkpoint / "metadata").write_text(json.dumps({"id": self.stream_id}), encoding="utf-8")
        return self

    def awaitTermination(self) -> None:  # noqa: N802 - pyspark's name
        for batch_id in self.batch_ids:
            self.each(Batch(), batch_id)


def test_each_micro_batch_carries_the_stream_id_read_once_and_only_the_first_replaces(tmp_path, monkeypatch):
    existing = {"main"}
    spark = SimpleNamespace(catalog=SimpleNamespace(tableExists=lambda name: name.split(".")[-1] in existing,
                                                    refreshTable=lambda name: None))
    store = TableStore(spark, PipelineSettings(schema="s"), tmp_path)  # type: ignore[arg-type]
    monkeypatch.setattr(TableStore, "_describe", lambda self, table: None)
    reads: list[Path] = []
    read_id = storage._stream_id
    monkeypatch.setattr(storage, "_stream_id", lambda checkpoint: reads.append(checkpoint) or read_id(checkpoint))
    handed: list[MicroBatch] = []

    store.for_each_batch(TableConfig(name="main", layer="bronze"), Stream([3, 4, 5], "abc"),  # type: ignore[arg-type]
                         lambda batch, micro: handed.append(micro))

    # no checkpoint yet and the table exists: a stream rebuilt from its inputs replaces it in its first batch
    assert handed == [MicroBatch("ldp-abc", 3, replace=True), MicroBatch("ldp-abc", 4, replace=False),
                      MicroBatch("ldp-abc", 5, replace=False)]
    assert reads == [store.checkpoint_dir("main")]  # the stream's id is read once, at its first batch

    handed.clear()
    store.for_each_batch(TableConfig(name="main", layer="bronze"), Stream([6], "abc"),  # type: ignore[arg-type]
                         lambda batch, micro: handed.append(micro))
    assert handed == [MicroBatch("ldp-abc", 6, replace=False)]  # the checkpoint exists: the stream goes on
