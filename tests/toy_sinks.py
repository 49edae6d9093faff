"""A made-up sink type for the registry tests: rows copied as JSON lines into a local folder."""
from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from pipelines.catalog import sinks as writers
from pipelines.core import sinks


class FolderSink(sinks.SinkSpec):
    """`folder`: where the table's rows go, one JSON file set per table; `broken` makes every write fail."""

    type: Literal["folder"]
    folder: str = Field(min_length=1)
    broken: bool = False

    def target(self, table_name: str) -> str:
        return f"{self.folder}/{table_name}"

    @property
    def write_mode(self) -> str:
        return "replace"


class FolderWriter(writers.SinkWriter[FolderSink]):
    closed: list[str] = []  # run ids whose writers were closed (the run finished)

    def write(self, df, sink, table):
        if sink.broken:
            raise OSError(f"{sink.folder} is read-only")
        df.write.mode("overwrite").json(sink.target(table))
        return df.count()

    def close(self) -> None:
        FolderWriter.closed.append(self.run.run_id)


@pytest.fixture
def folder_sink(monkeypatch):
    """The toy type registered for one test only (both registries are restored after it)."""
    monkeypatch.setattr(sinks.SINKS, "classes", dict(sinks.SINKS.classes))
    monkeypatch.setattr(writers, "_WRITERS", dict(writers._WRITERS))
    sinks.register_sink(FolderSink)
    writers.register_writer("folder", FolderWriter)
    return FolderSink
