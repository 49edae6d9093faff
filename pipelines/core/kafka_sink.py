"""The `type: kafka` sink as config: the table's rows published to a Kafka topic (or Azure Event Hubs'
Kafka endpoint), each as one message whose value is the row as JSON. Pure: the writer is
`pipelines.catalog.kafka_sink.KafkaWriter`."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from .kafka_source import KafkaClient, spark_package
from .sinks import SinkSpec, register_sink

_OWNED = {"kafka.bootstrap.servers": "bootstrap_servers", "topic": "topic"}  # writer options the spec sets
IDEMPOTENT_PRODUCER = {"kafka.enable.idempotence": "true", "kafka.acks": "all"}  # no duplicate from a producer retry


@register_sink
class KafkaSink(SinkSpec, KafkaClient):
    """Every row of the table as a message on `topic`: the value is the row as JSON (every column but
    DQX's), the key the value of `key` (a column or a SQL expression; none: no key), and two headers say
    where it came from (`ldp_table`, `ldp_run_id`). The producer is idempotent (`acks=all`), so a retried
    send never duplicates a message; a rerun publishes the rows again (at least once: consumers that must
    see each row once deduplicate by key, or read a compacted topic). Credentials are never in config.yml:
    `jaas_config_env` names the environment variable holding `kafka.sasl.jaas.config`."""

    type: Literal["kafka"]
    topic: str = Field(min_length=1)
    key: str | None = Field(default=None, min_length=1)
    owned_options: ClassVar[dict[str, str]] = _OWNED
    role: ClassVar[str] = "sink"

    @field_validator("topic")
    @classmethod
    def _one_topic(cls, value: str) -> str:
        if "," in value or value != value.strip():
            raise ValueError(f"must be one topic's name, got {value!r}")
        return value

    def target(self, table_name: str) -> str:
        return f"{self.topic} on {self.bootstrap_servers}"

    @property
    def write_mode(self) -> str:
        return "publish"

    @property
    def lakeflow_sink(self) -> str | None:
        return "create_sink"

    def cdc_problem(self, stored_as_scd_type: int, removes_rows: bool) -> str | None:
        return ("a topic only receives messages: it cannot mirror a CDC table's rows updated or deleted in place "
                "(publish the change feed's table instead, or use a delta sink with mode: replace)")

    @property
    def local_packages(self) -> tuple[str, ...]:
        return (spark_package("spark-sql-kafka-0-10"),)

    @property
    def writer_options(self) -> dict[str, str]:
        """Spark's Kafka writer options (idempotent unless `options` say otherwise), except the JAAS config."""
        return {**IDEMPOTENT_PRODUCER, **{k: str(v) for k, v in self.options.items()},
                "kafka.bootstrap.servers": self.servers, "topic": self.topic}
