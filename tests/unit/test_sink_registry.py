"""Sink types are a registry keyed by `type:`: a new type is one spec class plus its registration (and
one writer on the Spark side), and config errors name it like the built-in `lakebase` one."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from pipelines.catalog import sinks as writers
from pipelines.core import sinks
from pipelines.core.config import parse_config
from pipelines.core.errors import ConfigError, RunError
from pipelines.consumers import sinks as consumer  # noqa: F401 - brings the built-in writers
from pipelines.core.lakebase import LakebaseSink
from tests.toy_sinks import FolderSink, folder_sink  # noqa: F401 - the fixture

CONFIG = """
pipeline: {{schema: s, transformations: ./t}}
tables:
  - name: a
    layer: gold
    sinks:
      - {sink}
"""


def problems_of(sink: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(sink=sink), Path("cfg/config.yml"))
    return [p.render() for p in caught.value.problems]


def test_lakebase_is_the_built_in_sink_type():
    assert sinks.SINKS.types() == ("lakebase",)
    sink = LakebaseSink.model_validate({"type": "lakebase", "schema": "app", "mode": "upsert", "primary_key": ["id"]})
    assert (sink.target("orders"), sink.write_mode) == ("app.orders", "upsert")
    assert writers.writer_class("lakebase").__name__ == "LakebaseWriter"


def test_an_unknown_or_missing_sink_type_is_located_and_lists_the_known_ones():
    assert problems_of("{type: kafka, topic: t}") == [
        "cfg/config.yml:7, table 'a', key 'sinks.type': unknown sink type; expected 'lakebase' (got 'kafka')"]
    assert problems_of("{schema: app}") == ["cfg/config.yml:7, table 'a', key 'sinks': sink needs a 'type' (lakebase)"]


def test_a_sink_types_own_keys_are_checked_with_a_did_you_mean():
    [problem] = problems_of("{type: lakebase, schema: app, primary_keys: [id]}")
    assert "key 'sinks.primary_keys': unknown key 'primary_keys'" in problem
    assert "did you mean 'primary_key'?" in problem


def test_a_registered_toy_sink_is_accepted_by_the_config(folder_sink):
    config = parse_config(CONFIG.format(sink="{type: folder, folder: out}"), Path("config.yml"))
    [sink] = config.table("a").sinks
    assert isinstance(sink, FolderSink) and sink.target("a") == "out/a"
    assert problems_of("{type: folder}") == ["cfg/config.yml:7, table 'a', key 'sinks.folder': required key is missing"]
    assert "expected 'lakebase', 'folder'" in problems_of("{type: nope}")[0]


def test_registration_needs_a_one_value_type_a_unique_name_and_a_spec_before_its_writer(folder_sink):
    class Untyped(sinks.SinkSpec):
        pass

    class Imposter(sinks.SinkSpec):
        type: Literal["folder"]

    with pytest.raises(TypeError, match="one-value Literal"):
        sinks.register_sink(Untyped)
    with pytest.raises(ValueError, match="sink type 'folder' is registered already, by FolderSink"):
        sinks.register_sink(Imposter)
    with pytest.raises(ValueError, match="no sink spec is registered as 'ftp'"):
        writers.register_writer("ftp", writers.SinkWriter)
    with pytest.raises(RunError, match="no writer is registered for sink type 'ftp'"):
        writers.writer_class("ftp")
