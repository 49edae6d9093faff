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


def test_lakebase_delta_kafka_and_python_are_the_built_in_sink_types():
    assert sinks.SINKS.types() == ("lakebase", "delta", "kafka", "python")
    sink = LakebaseSink.model_validate({"type": "lakebase", "schema": "app", "mode": "upsert", "primary_key": ["id"]})
    assert (sink.target("orders"), sink.write_mode) == ("app.orders", "upsert")
    assert writers.writer_class("lakebase").__name__ == "LakebaseWriter"


def test_an_unknown_or_missing_sink_type_is_located_and_lists_the_known_ones():
    assert problems_of("{type: ftp, host: h}") == [
        "cfg/config.yml:7, table 'a', key 'sinks.type': unknown sink type; expected 'lakebase', 'delta', 'kafka', "
        "'python' (got 'ftp')"]
    assert problems_of("{schema: app}") == [
        "cfg/config.yml:7, table 'a', key 'sinks': sink needs a 'type' (lakebase, delta, kafka or python)"]


def test_a_sink_types_own_keys_are_checked_with_a_did_you_mean():
    [problem] = problems_of("{type: lakebase, schema: app, primary_keys: [id]}")
    assert "key 'sinks.primary_keys': unknown key 'primary_keys'" in problem
    assert "did you mean 'primary_key'?" in problem


def test_a_registered_toy_sink_is_accepted_by_the_config(folder_sink):
    config = parse_config(CONFIG.format(sink="{type: folder, folder: out}"), Path("config.yml"))
    [sink] = config.table("a").sinks
    assert isinstance(sink, FolderSink) and sink.target("a") == "out/a"
    assert problems_of("{type: folder}") == ["cfg/config.yml:7, table 'a', key 'sinks.folder': required key is missing"]
    assert "expected 'lakebase', 'delta', 'kafka', 'python', 'folder'" in problems_of("{type: nope}")[0]


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


def test_a_delta_sink_names_one_target_and_keys_for_merge_only():
    from pipelines.core.delta_sink import DeltaSink

    sink = parse_config(CONFIG.format(sink="{type: delta, table: main.copies.a, mode: merge, keys: [id]}"),
                        Path("cfg/config.yml")).table("a").sinks[0]
    assert sink == DeltaSink(type="delta", table="main.copies.a", mode="merge", keys=("id",))
    assert (sink.target("a"), sink.write_mode) == ("main.copies.a", "merge")
    assert writers.writer_class("delta").__name__ == "DeltaWriter"
    for bad, message in [
            ("{type: delta}", "key 'sinks': give the Delta table's name (table) or its location (path), exactly one"),
            ("{type: delta, table: a.b, path: p}", "exactly one"),
            ("{type: delta, path: p, mode: merge}", "mode 'merge' needs keys"),
            ("{type: delta, path: p, keys: [id]}", "keys are for mode 'merge' only (this sink's mode is 'replace')"),
            ("{type: delta, path: p, mode: merge, keys: [id, id]}", "key 'sinks.keys': must name distinct columns"),
            ("{type: delta, path: p, mode: upsert}", "key 'sinks.mode'"),
            ("{type: delta, table: 'a b'}", "key 'sinks.table': must be a table name like catalog.schema.table")]:
        [problem] = problems_of(bad)
        assert problem.startswith("cfg/config.yml:7, table 'a'") and message in problem, (bad, problem)


def test_a_kafka_sink_publishes_to_one_topic_idempotently_and_never_holds_a_credential():
    from pipelines.core.kafka_sink import KafkaSink

    sink = parse_config(CONFIG.format(sink="{type: kafka, bootstrap_servers: 'b:9092', topic: out, key: id, "
                                           "options: {kafka.acks: '1', kafka.compression.type: zstd}}"),
                        Path("cfg/config.yml")).table("a").sinks[0]
    assert isinstance(sink, KafkaSink) and (sink.target("a"), sink.write_mode) == ("out on b:9092", "publish")
    assert sink.writer_options == {"kafka.enable.idempotence": "true", "kafka.acks": "1",  # options win
                                   "kafka.compression.type": "zstd", "kafka.bootstrap.servers": "b:9092", "topic": "out"}
    assert sink.local_packages[0].startswith("org.apache.spark:spark-sql-kafka-0-10_2.13:")
    from pipelines.core.plan import build_plan

    config = parse_config(CONFIG.format(sink="{type: kafka, bootstrap_servers: 'b:9092', topic: out}"),
                          Path("cfg/config.yml"))
    assert build_plan(config).local_packages == sink.local_packages  # a run's session loads the connector
    assert writers.writer_class("kafka").__name__ == "KafkaWriter"
    assert "a topic only receives messages" in sink.cdc_problem(1, removes_rows=False)
    for bad, message in [
            ("{type: kafka, topic: t}", "key 'sinks.bootstrap_servers': required key is missing"),
            ("{type: kafka, bootstrap_servers: b, topic: 'a,b'}", "key 'sinks.topic': must be one topic's name"),
            ("{type: kafka, bootstrap_servers: b, topic: t, options: {kafka.sasl.jaas.config: x}}",
             "credentials never go in config.yml"),
            ("{type: kafka, bootstrap_servers: b, topic: t, options: {topic: u}}",
             "'topic' is set by this sink's own key: use topic"),
            ("{type: kafka, bootstrap_servers: b, topic: t, jaas_config_env: 'user=u password=p'}",
             "key 'sinks.jaas_config_env': must be an environment variable's name")]:
        [problem] = problems_of(bad)
        assert problem.startswith("cfg/config.yml:7, table 'a'") and message in problem, (bad, problem)
        assert "password=p" not in problem


def test_a_python_sink_names_a_module_and_function_of_the_project():
    from pipelines.core.python_sink import PythonSink

    sink = parse_config(CONFIG.format(sink="{type: python, module: crm_export, function: publish}"),
                        Path("cfg/config.yml")).table("a").sinks[0]
    assert isinstance(sink, PythonSink) and sink.entry == "crm_export.publish"
    assert (sink.target("a"), sink.write_mode) == ("sinks/crm_export.py:publish", "foreach_batch")
    assert sink.cdc_problem(2, removes_rows=True) is None  # handed the table as it stands
    assert writers.writer_class("python").__name__ == "PythonWriter"
    for bad, message in [("{type: python}", "key 'sinks.module': required key is missing"),
                         ("{type: python, module: crm-export}", "key 'sinks.module': must be a Python identifier"),
                         ("{type: python, module: m, function: 'a.b'}", "key 'sinks.function': must be a Python")]:
        [problem] = problems_of(bad)
        assert problem.startswith("cfg/config.yml:7, table 'a'") and message in problem, (bad, problem)
