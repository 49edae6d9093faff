"""`source: {type: kafka}`: events from Kafka topics (or Azure Event Hubs' Kafka endpoint), their value
decoded into columns. Pure: the reader is `pipelines.catalog.sources.KafkaReader`."""
from __future__ import annotations

import json
import os
import re
from importlib.metadata import PackageNotFoundError, version
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from .errors import Problem, RunError
from .sources import Scalar, SecretReference, SourceSpec, env_name, register_source

_OWNED = {"kafka.bootstrap.servers": "bootstrap_servers", "subscribe": "topic", "subscribepattern": "subscribe_pattern",
          "startingoffsets": "starting_offsets"}  # reader options the spec sets from its own keys
KAFKA_COLUMN = "_kafka"  # struct<key, topic, partition, offset, timestamp>: where each event came from
EMBEDDED = "embedded"  # bootstrap_servers of the broker a local run starts (pipelines.engine.embedded_kafka)
EMBEDDED_KAFKA_ENV = "LDP_EMBEDDED_KAFKA"  # its address while the run lasts (inherited by the SDP process)
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's legal topic names


def kafka_options(options: dict[str, Scalar], owned: dict[str, str], owner: str) -> dict[str, Scalar]:
    """`options` passed to Spark's Kafka connector, if none is a credential (those come from the environment,
    `jaas_config_env`) nor one the `owner`'s own keys set (`owned`: lowercase option -> the key to use)."""
    for key in options:
        lowered = key.lower()
        if "jaas" in lowered or "password" in lowered:
            raise ValueError(f"{key!r}: credentials never go in config.yml; give jaas_config: "
                             "${secret.SCOPE.KEY}, or name the environment variable holding "
                             "kafka.sasl.jaas.config in jaas_config_env")
        if lowered in owned:
            raise ValueError(f"{key!r} is set by this {owner}'s own key: use {owned[lowered]}")
    return options


class KafkaClient(BaseModel):
    """What a Kafka source and a Kafka sink share: the brokers, the variable holding the JAAS secret and
    the connector's other options, none of which may be a credential or an option the spec's own keys set."""

    bootstrap_servers: str = Field(min_length=1)
    jaas_config: SecretReference | None = None  # ${secret.SCOPE.KEY}: kafka.sasl.jaas.config, resolved at run time
    jaas_config_env: str | None = None
    options: dict[str, Scalar] = Field(default_factory=dict)
    owned_options: ClassVar[dict[str, str]] = {}  # lowercase connector option -> the spec's key that sets it
    role: ClassVar[str] = "source"

    @field_validator("jaas_config_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return env_name(value, "KAFKA_JAAS_CONFIG")

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers == EMBEDDED

    @property
    def servers(self) -> str:
        """The brokers to connect to: `embedded` is the broker this local run started, wherever it listens."""
        if not self.embedded:
            return self.bootstrap_servers
        address = os.environ.get(EMBEDDED_KAFKA_ENV)
        if not address:
            where = "source" if self.role == "source" else "sinks"
            raise RunError(Problem("'embedded' is the broker ldp_engine starts for a local run, and none runs here",
                                   key=f"{where}.bootstrap_servers", value=EMBEDDED,
                                   hint="give this target's brokers, e.g. bootstrap_servers: "
                                        "${var.kafka_bootstrap_servers} with the value set per target"))
        return address

    @model_validator(mode="after")
    def _one_credential(self) -> "KafkaClient":
        if self.jaas_config is not None and self.jaas_config_env is not None:
            raise ValueError("give jaas_config (a secret reference) or jaas_config_env, not both")
        return self

    @field_validator("options")
    @classmethod
    def _no_secret_no_owned_key(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        return kafka_options(value, cls.owned_options, cls.role)


def spark_package(artifact: str) -> str:
    """An Apache Spark module built for the installed pyspark (Scala 2.13), as Maven names it."""
    try:
        spark_version = version("pyspark")
    except PackageNotFoundError:  # a Databricks runtime's Spark has the module built in
        spark_version = "4.2.0"
    return f"org.apache.spark:{artifact}_2.13:{spark_version}"


@register_source
class KafkaSource(SourceSpec, KafkaClient):
    """Events from a topic (a comma-separated list) or every topic matching `subscribe_pattern`, from
    `starting_offsets` (earliest, latest for a stream, or Kafka's JSON of offsets per partition). The value
    is decoded by `value_format`: `string` keeps it as the `value` column; `json` parses it with
    `value_schema` (a DDL schema) into columns, a value that does not parse going to quarantine by the
    `malformed_record` check with its offset; `avro` decodes it with `value_schema` (an Avro schema in
    JSON). Where each event came from is the `_kafka` struct column: key (a string), topic, partition,
    offset and timestamp. Credentials are never in config.yml: `jaas_config_env` names the environment
    variable holding `kafka.sasl.jaas.config` (SASL options such as `kafka.security.protocol` go in
    `options`). As a stream, each run reads the events since the last run's offsets (its checkpoint)."""

    type: Literal["kafka"]
    topic: str | None = Field(default=None, min_length=1)
    subscribe_pattern: str | None = Field(default=None, min_length=1)
    starting_offsets: str = "earliest"
    value_format: Literal["string", "json", "avro"] = "string"
    value_schema: str | None = Field(default=None, min_length=1)
    owned_options: ClassVar[dict[str, str]] = _OWNED

    @field_validator("starting_offsets")
    @classmethod
    def _offsets(cls, value: str) -> str:
        if value in ("earliest", "latest"):
            return value
        try:
            offsets = json.loads(value)
        except ValueError:
            offsets = None
        if not isinstance(offsets, dict):
            raise ValueError('must be earliest, latest or offsets per partition as JSON, such as '
                             '\'{"orders": {"0": 42}}\'')
        return value

    @model_validator(mode="after")
    def _one_subscription_schema_as_format(self) -> "KafkaSource":
        if (self.topic is None) == (self.subscribe_pattern is None):
            raise ValueError("give the topic(s) to read (topic) or a pattern of topic names (subscribe_pattern), "
                             "exactly one")
        if self.value_format == "string" and self.value_schema is not None:
            raise ValueError("value_schema is for value_format json or avro (a string value has no schema)")
        if self.value_format != "string" and self.value_schema is None:
            raise ValueError(f"value_format {self.value_format} needs value_schema ("
                             + ("a DDL schema such as 'order_id STRING, amount DOUBLE')" if self.value_format == "json"
                                else "the Avro schema, in JSON)"))
        if self.value_format == "avro":
            try:
                json.loads(str(self.value_schema))
            except ValueError:
                raise ValueError("value_schema of an avro value must be the Avro schema in JSON, such as "
                                 '\'{"type": "record", "name": "Order", "fields": [...]}\'') from None
        return self

    @property
    def can_stream(self) -> bool:
        return True

    @property
    def record_format(self) -> str:
        return f"Kafka {self.value_format}"

    @property
    def columns_declared(self) -> bool:
        """Always: a string value, or `value_schema`'s columns, and `_kafka`: `plan` needs no Spark for them."""
        return True

    @property
    def flags_malformed_records(self) -> bool:
        return self.value_format == "json"  # a value that does not parse keeps its text aside

    @property
    def local_packages(self) -> tuple[str, ...]:
        modules = ["spark-sql-kafka-0-10"] + (["spark-avro"] if self.value_format == "avro" else [])
        return tuple(spark_package(module) for module in modules)

    @property
    def reader_options(self) -> dict[str, str]:
        """Spark's Kafka reader options, except the JAAS config (read from the environment at run time)."""
        subscription = {"subscribe": self.topic} if self.topic else {"subscribePattern": str(self.subscribe_pattern)}
        return {**{k: str(v) for k, v in self.options.items()}, "kafka.bootstrap.servers": self.servers,
                **subscription, "startingOffsets": self.starting_offsets}


class KafkaSettings(BaseModel, extra="forbid", frozen=True):
    """`kafka:` in config.yml. `seed` publishes events to topics of the embedded broker (`bootstrap_servers:
    embedded`, local runs only), standing in for the producers a real topic has: each topic maps to a
    folder (or one file) of events, one message value per line; every file is published once, in name
    order, its events stamped with the file's modification time, so a new file is a new batch of events."""

    seed: dict[str, str] = Field(default_factory=dict)

    @field_validator("seed")
    @classmethod
    def _topics(cls, value: dict[str, str]) -> dict[str, str]:
        for topic in value:
            if not _TOPIC.match(topic):
                raise ValueError(f"{topic!r} is not a Kafka topic name (letters, digits, '.', '_' and '-', "
                                 "at most 249)")
        return value
