"""Kafka events as a source (`type: kafka`), read from a real broker on 127.0.0.1 (Apache Kafka's jars
from Maven Central) with Spark's Kafka connector (pytest.ini's `ldp_spark_packages`): JSON values
decoded into columns with where each came from, a malformed one quarantined with its offset, a stream
reading only the events added since the last run, a batch reading them all."""
from __future__ import annotations

import itertools
import json

import pytest

from pipelines.catalog.sources import read_source
from pipelines.core.kafka_source import KafkaSource
from tests.spark.harness import Harness

_topics = itertools.count()
MODULES = {"bronze/order_events.py": "def order_events(source):\n    return source\n"}


def config(servers: str, topic: str) -> str:
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: order_events
    layer: bronze
    source: {{type: kafka, bootstrap_servers: '{servers}', topic: {topic}, value_format: json,
             value_schema: 'order_id STRING, amount DOUBLE'}}
"""


def produce(spark, servers: str, topic: str, events: list[tuple[str, str]]) -> None:
    """(key, value) events written to the topic by Spark's own Kafka writer."""
    (spark.createDataFrame(events, "key string, value string").coalesce(1).write.format("kafka")  # in order
     .option("kafka.bootstrap.servers", servers).option("topic", topic).save())


def order(number: int, amount: float) -> tuple[str, str]:
    return f"o{number}", json.dumps({"order_id": f"o{number}", "amount": amount})


@pytest.fixture
def topic() -> str:
    return f"orders_{next(_topics)}"


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_json_events_land_decoded_and_a_malformed_one_is_quarantined_with_its_offset(
        spark, tmp_path, kafka_broker, topic, mode):
    harness = Harness(spark, tmp_path, MODULES, config=config(kafka_broker, topic))
    produce(spark, kafka_broker, topic, [order(1, 10.0), ("bad", "{not json"), order(2, 20.5)])
    tables, result = harness.run(mode=mode)
    assert result.status == "success", [t.error for t in tables.values()]
    rows = harness.table("order_events").select("order_id", "amount", "_kafka.key", "_kafka.topic", "_kafka.offset")
    assert sorted(tuple(r) for r in rows.collect()) == [("o1", 10.0, "o1", topic, 0), ("o2", 20.5, "o2", topic, 2)]
    [bad] = harness.table("order_events_quarantine").collect()
    assert (bad["_kafka"]["offset"], bad["_kafka"]["key"], bad["order_id"]) == (1, "bad", None)
    assert "malformed Kafka json record" in bad["_errors"][0]["message"] and "{not json" in bad["_errors"][0]["message"]
    assert (tables["order_events"].rows_written, tables["order_events"].rows_quarantined) == (2, 1)

    produce(spark, kafka_broker, topic, [order(3, 30.0)])
    tables, result = harness.run(mode=mode)
    assert result.status == "success", [t.error for t in tables.values()]
    assert sorted(r.order_id for r in harness.table("order_events").collect()) == ["o1", "o2", "o3"]
    assert harness.table("order_events_quarantine").count() == 1  # the malformed event, once
    # a stream reads only the event added since the last run; a batch re-reads the topic from the start
    assert tables["order_events"].rows_written == (1 if mode == "streaming" else 3)


def test_a_string_value_a_topic_pattern_and_offsets_per_partition(spark, tmp_path, kafka_broker, topic):
    produce(spark, kafka_broker, topic, [("k1", "first"), ("k2", "second"), ("k3", "third")])
    source = KafkaSource(type="kafka", bootstrap_servers=kafka_broker, subscribe_pattern=f"{topic}$|nothing_else")
    assert [(r.value, r._kafka.offset) for r in read_source(spark, source, tmp_path, streaming=False).collect()] == [
        ("first", 0), ("second", 1), ("third", 2)]
    later = KafkaSource(type="kafka", bootstrap_servers=kafka_broker, topic=topic,
                        starting_offsets=json.dumps({topic: {"0": 1}}))
    assert [r.value for r in read_source(spark, later, tmp_path, streaming=False).collect()] == ["second", "third"]
    assert read_source(spark, later, tmp_path, streaming=True).isStreaming


ORDER_AVRO = json.dumps({"type": "record", "name": "Order", "fields": [
    {"name": "order_id", "type": "string"}, {"name": "amount", "type": "double"}]})


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_avro_values_land_decoded_into_columns(spark, tmp_path, kafka_broker, topic, mode):
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import to_avro

    orders = spark.createDataFrame([("o1", 10.0), ("o2", 20.5)], "order_id STRING NOT NULL, amount DOUBLE NOT NULL")
    (orders.select(F.col("order_id").alias("key"), to_avro(F.struct("order_id", "amount"), ORDER_AVRO).alias("value"))
     .coalesce(1).write.format("kafka").option("kafka.bootstrap.servers", kafka_broker).option("topic", topic).save())
    avro = config(kafka_broker, topic).replace("value_format: json", "value_format: avro").replace(
        "'order_id STRING, amount DOUBLE'", f"'{ORDER_AVRO}'")
    harness = Harness(spark, tmp_path, MODULES, config=avro)
    tables, result = harness.run(mode=mode)
    assert result.status == "success", [t.error for t in tables.values()]
    rows = harness.table("order_events").select("order_id", "amount", "_kafka.key", "_kafka.offset")
    assert sorted(tuple(r) for r in rows.collect()) == [("o1", 10.0, "o1", 0), ("o2", 20.5, "o2", 1)]


def test_databricks_registers_a_streaming_table_reading_the_topic(spark, tmp_path, kafka_broker, topic):
    from tests.spark.test_registrar import register

    harness = Harness(spark, tmp_path, MODULES, config=config(kafka_broker, topic))
    _, registry = register(spark, harness.path, mode="streaming")
    assert {name: type(output).__name__ for name, output in registry.outputs.items()} == {
        "order_events__checked": "TemporaryView", "order_events": "StreamingTable",
        "order_events_quarantine": "StreamingTable"}  # the malformed_record check: valid rows and quarantine
    events = registry.flows["order_events__checked"].func()  # the decoded events, with the checks' results
    assert events.isStreaming and {"order_id", "amount", "_kafka", "_errors"} <= set(events.columns)


def test_a_broker_that_cannot_be_reached_fails_the_table_at_once_naming_the_address(spark, tmp_path, topic):
    from pipelines.ldp.sdp_process import free_port

    closed = f"127.0.0.1:{free_port()}"
    harness = Harness(spark, tmp_path, MODULES, config=config(closed, topic))
    tables, result = harness.run(mode="streaming")
    assert result.status == "failed"
    assert (f"key 'source.bootstrap_servers': no Kafka broker can be reached ({closed}: Connection refused)"
            in tables["order_events"].error), tables["order_events"].error
