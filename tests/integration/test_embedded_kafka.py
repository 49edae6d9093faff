"""`bootstrap_servers: embedded`: the local broker a run starts, seeds and stops, or leaves out (and says
so) when it cannot start. The example's order-events table reads it; its happy paths (batch, streaming
with a new seed file, both runners) are in test_example_pipeline.py and test_sdp_runner.py."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from pipelines.core.config import load_config
from pipelines.core.errors import ConfigError, RunError
from pipelines.core.kafka_source import EMBEDDED_KAFKA_ENV, KafkaSource
from pipelines.engine.cli import cli
from pipelines.core.plan import build_plan
from pipelines.engine.embedded_kafka import EmbeddedKafka, embedded_kafka, embedded_users, seed
from tests.conftest import REPO


def invoke(project, *args: str):
    return CliRunner().invoke(cli, ["--config", str(project / "config.yml"), "--format", "json",
                                    "--state-dir", str(project / ".ldp"), *args])


def test_a_broker_that_cannot_start_leaves_its_tables_out_says_so_and_the_rest_runs(
        spark, example_project, monkeypatch):
    config = example_project / "config.yml"
    config.write_text(config.read_text().replace("schema: retail ", "schema: retail_nokafka "))
    monkeypatch.setenv("JAVA_HOME", str(example_project / "no-java"))  # the broker's JVM cannot start

    result = invoke(example_project, "--select", "order_events_bronze,customers_bronze")
    assert result.exit_code == 0, result.stderr
    assert "Kafka: the embedded broker did not start (" in result.stderr
    assert "; skipping order_events_bronze" in result.stderr
    summary = json.loads(result.stdout)
    assert [(t["name"], t["status"]) for t in summary["tables"]] == [("customers_bronze", "success")]

    alone = invoke(example_project, "--select", "order_events_bronze")  # nothing left to run: a failure
    assert alone.exit_code == 3
    assert "the embedded Kafka broker did not start" in alone.stderr and "every selected table needs it" in alone.stderr
    assert "Traceback" not in alone.stderr + alone.stdout


def test_embedded_outside_a_local_run_is_a_clear_error_naming_the_key(monkeypatch):
    monkeypatch.delenv(EMBEDDED_KAFKA_ENV, raising=False)
    source = KafkaSource(type="kafka", bootstrap_servers="embedded", topic="orders")
    with pytest.raises(RunError) as raised:
        source.reader_options
    assert "key 'source.bootstrap_servers'" in str(raised.value)
    assert "'embedded' is the broker ldp_engine starts for a local run" in str(raised.value)
    monkeypatch.setenv(EMBEDDED_KAFKA_ENV, "127.0.0.1:9999")
    assert source.reader_options["kafka.bootstrap.servers"] == "127.0.0.1:9999"
    assert KafkaSource(type="kafka", bootstrap_servers="b:9092", topic="o").reader_options[
        "kafka.bootstrap.servers"] == "b:9092"


def test_seed_topics_and_folders_are_checked_and_located(example_project, tmp_path):
    config = example_project / "config.yml"
    text = config.read_text()
    config.write_text(text.replace("retail.order_events: ./data", "retail/order events: ./data"))
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert "kafka.seed" in str(raised.value) and "is not a Kafka topic name" in str(raised.value)

    config.write_text(text.replace("./data/events/order_events", "./data/events/missing"))
    with pytest.raises(ConfigError) as raised:  # before any broker is contacted
        seed(load_config(config), "127.0.0.1:1", tmp_path)
    assert "key 'kafka.seed.retail.order_events'" in str(raised.value)
    assert "no such file or folder" in str(raised.value) and str(config) in str(raised.value)
    assert not (tmp_path / "seeded.json").exists()


def test_on_databricks_no_broker_starts_on_the_driver(monkeypatch, tmp_path):
    plan = build_plan(load_config(REPO / "config.yml"))
    assert embedded_users(plan) == ("order_events_bronze",)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    said: list[str] = []
    with embedded_kafka(plan, tmp_path, said.append) as kafka:  # the table fails naming the key instead
        assert kafka == EmbeddedKafka() and EMBEDDED_KAFKA_ENV not in os.environ
    assert said == [] and not (tmp_path / "kafka").exists()


def test_for_sinks_publish_only_embedded_sinks_start_it_and_a_failed_start_only_names_them(tmp_path, monkeypatch):
    from tests.conftest import write_project

    config = write_project(tmp_path, """
pipeline: {schema: s, transformations: ./transformations}
tables:
  - {name: events, layer: bronze, source: {type: kafka, bootstrap_servers: embedded, topic: in}}
  - name: scores
    layer: silver
    depends_on: [events]
    sinks: [{type: kafka, bootstrap_servers: embedded, topic: out}]
""", {"silver/scores.py": "def scores(events):\n    return events\n"})
    plan = build_plan(load_config(config))
    assert embedded_users(plan) == ("events", "scores") and embedded_users(plan, sinks_only=True) == ("scores",)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))  # the broker's JVM cannot start
    said: list[str] = []
    with embedded_kafka(plan, tmp_path / ".ldp", said.append, sinks_only=True) as kafka:  # no RunError: other
        assert kafka == EmbeddedKafka(skipped=("scores",))                              # sinks still publish
    [line] = said
    assert line.startswith("Kafka: the embedded broker did not start (") and line.endswith("the Kafka sinks of scores fail")


def test_a_new_brokers_cluster_id_is_never_taken_for_an_option():
    # the storage tool's parser read an id starting with '-' as an option: one start in 64 failed (seen in a test run)
    from pipelines.engine.kafka_broker import cluster_id

    ids = [cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)  # 16 random bytes, unpadded base64
