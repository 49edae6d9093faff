"""Made-up source types for one test at a time: a test declares its toy spec and reader, and registers
them with `register_source_type`, which restores both registries (specs and readers) after the test."""
from __future__ import annotations

import typing
from typing import Any, TypeVar

import pytest

from pipelines.catalog import sources as readers
from pipelines.core import sources

S = TypeVar("S", bound=type[sources.SourceSpec])


def register_source_type(monkeypatch: pytest.MonkeyPatch, spec: S, reader: readers.SourceReader[Any]) -> S:
    """Register `spec` and its `reader` under the spec's `type:` until the test ends; the spec."""
    monkeypatch.setattr(sources.SOURCES, "classes", dict(sources.SOURCES.classes))
    monkeypatch.setattr(readers, "_READERS", dict(readers._READERS))
    sources.register_source(spec)
    [tag] = typing.get_args(spec.model_fields["type"].annotation)
    readers.register_reader(tag, reader)
    return spec
