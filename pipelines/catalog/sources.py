"""What a transformation reads, shared by every runner so they all read it the same way: its upstream
tables and its declared source.

Each source type (`pipelines.core.sources`, keyed by `type:`) has one reader here, registered under the
same type: a class that reads it as a batch and, if the type can stream, as a stream. A new type is its
spec plus `register_reader("name", NameReader())`."""
from __future__ import annotations

import functools
import re
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.secrets import credential
from pipelines.core.ddl import ddl_columns, ddl_fields
from pipelines.core.errors import Problem, RunError, describe_error
from pipelines.core.kafka_source import KAFKA_COLUMN, KafkaSource
from pipelines.core.plan import TablePlan
from pipelines.core.source_checks import CORRUPT_RECORD, checks_malformed_records
from pipelines.core.sources import (DeltaCdfSource, FilesSource, JdbcSource, SourceSpec, TableSource, resolved_path,
                                    source_types)
from pipelines.core.vocabulary import RESULT_COLUMNS, landing_name


def transformation_inputs(spark: SparkSession, table: TablePlan, base_dir: Path,
                          read: Callable[[str], DataFrame], auto_loader: bool = False,
                          empty_sources: bool = False, hinted: str | None = None,
                          landing: Callable[[str], str] | None = None) -> dict[str, object]:
    """The transformation's arguments: each upstream table by name, with business columns only
    (upstream tables carry DQX's `_warnings`), and `source` if the table declares one
    (`empty_sources`: no row of it, for a dry run that resolves every query on empty inputs).
    `hinted`: the source's `schema_hints` already applied (`hinted_schema`, computed outside a pipeline
    query function, which may not infer a schema); else computed here when Spark must apply them.
    `landing`: a landing table's name as this runner reads it (a source that `lands` reads its rows
    landed so far from there; without it, from the source itself, as a plan resolving columns does)."""
    inputs: dict[str, object] = {dep: without_columns(read(dep), RESULT_COLUMNS)
                                 for dep in table.config.depends_on}
    if table.config.source is not None:
        source_spec = table.config.source
        if hinted is None and applies_hints_itself(source_spec, table.streaming, auto_loader):
            hinted = hinted_schema(spark, source_spec, base_dir)
        source = read_source(spark, source_spec, base_dir, table.streaming, auto_loader,
                             corrupt_record=checks_malformed_records(table.config), schema=hinted,
                             landing=landing(landing_name(table.name)) if landing and source_spec.lands else None)
        inputs["source"] = source.where(F.lit(False)) if empty_sources else source
    return inputs


def flows_rows(table: TablePlan, rows_of: Callable[[TablePlan], DataFrame]) -> DataFrame:
    """A table with `flows:` read whole: all its flows' rows (`rows_of` each flow as it reads), one frame."""
    return union_by_name([rows_of(table.flow_plan(flow.name)) for flow in table.config.flows])


def union_by_name(frames: list[DataFrame]) -> DataFrame:
    """Frames stacked by column name (a column some lack is NULL there)."""
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def without_columns(df: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """`df` minus the named columns, if present, without analyzing it: pipeline query functions may
    not analyze, and Spark Connect resolves `drop` eagerly; a column regex is resolved lazily."""
    alternatives = "|".join(re.escape(name) for name in names)
    return df.select(df.colRegex(f"`^(?!({alternatives})$).+$`"))


@dataclass(frozen=True)
class ReadOptions:
    """How a source is read in this run: relative paths resolve against `base_dir`; `auto_loader` uses
    Databricks' `cloudFiles` for file streams; `corrupt_record` keeps malformed csv/json records aside."""

    base_dir: Path
    auto_loader: bool = False
    corrupt_record: bool = False
    schema: str | None = None  # a files source's schema with its hints applied (`hinted_schema`)
    landing: str | None = None  # the table a source that `lands` is read from (its rows landed so far)


Spec = TypeVar("Spec", bound=SourceSpec)


class SourceReader(ABC, Generic[Spec]):
    """Reads one source type on Spark, as a batch or, if its spec `can_stream`, as a stream (a type that
    cannot stream keeps the default `stream`, which raises a RunError saying so)."""

    @abstractmethod
    def batch(self, spark: SparkSession, source: Spec, options: ReadOptions) -> DataFrame:
        """The source as it is now."""

    def stream(self, spark: SparkSession, source: Spec, options: ReadOptions) -> DataFrame:
        raise RunError(Problem(f"a {source.type!r} source cannot be read as a stream"))


_READERS: dict[str, SourceReader[Any]] = {}


def register_reader(source_type: str, reader: SourceReader[Any]) -> None:
    """Register the reader of a source type, under the `type:` its spec is registered by."""
    if source_type not in source_types():
        raise ValueError(f"no source spec is registered as {source_type!r} (registered: "
                         f"{', '.join(source_types())}); register the spec first")
    _READERS[source_type] = reader


def read_source(spark: SparkSession, source: SourceSpec, base_dir: Path, streaming: bool,
                auto_loader: bool = False, corrupt_record: bool = False, schema: str | None = None,
                landing: str | None = None) -> DataFrame:
    """The source in batch or as a stream, by the reader registered for its type."""
    reader = _READERS.get(source.type)
    if reader is None:
        raise RunError(Problem(f"no reader is registered for source type {source.type!r}",
                               hint=f"readers exist for: {', '.join(t for t in source_types() if t in _READERS)}"))
    options = ReadOptions(base_dir, auto_loader, corrupt_record, schema, landing)
    return (reader.stream if streaming else reader.batch)(spark, source, options)


class FilesReader(SourceReader[FilesSource]):
    """Files in batch or as a stream (Auto Loader's `cloudFiles` on Databricks).

    `corrupt_record` (csv/json with a declared schema): a record Spark cannot parse keeps its raw text in
    a `_corrupt_record` string column (null on every good record), which the table's `malformed_record`
    check reads. Auto Loader's controls (`file_read_options`): on Databricks its own options; locally
    the nearest thing Spark's file source does (README, Sources)."""

    def batch(self, spark: SparkSession, source: FilesSource, options: ReadOptions) -> DataFrame:
        return self._load(spark.read.format(source.format), source, options, cloud=False)

    def stream(self, spark: SparkSession, source: FilesSource, options: ReadOptions) -> DataFrame:
        if options.auto_loader:
            reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", source.format)
            return self._load(reader, source, options, cloud=True)
        return self._load(spark.readStream.format(source.format), source, options, cloud=False)

    @staticmethod
    def _load(reader: Any, source: FilesSource, read: ReadOptions, cloud: bool) -> DataFrame:
        options, schema = file_read_options(source, cloud=cloud, on_databricks=read.auto_loader,
                                            corrupt_record=read.corrupt_record, schema=read.schema)
        reader = reader.options(**options)
        if schema:
            reader = reader.schema(schema)
        files = reader.load(source.resolved_path(read.base_dir))
        return files.select("*", "_metadata") if source.include_metadata else files


def file_read_options(source: FilesSource, *, cloud: bool, on_databricks: bool, corrupt_record: bool = False,
                      schema: str | None = None) -> tuple[dict[str, str], str | None]:
    """The reader options and schema (DDL) of a files source. `cloud`: an Auto Loader stream, which takes
    `schema_hints` and `schema_evolution` as `cloudFiles.*`; any other reader gets hints applied to the
    schema by `hinted_schema` and has no evolution mode (a batch read infers each run, a local stream
    when it starts). The rescued data column is Databricks' `rescuedDataColumn` on Databricks; locally,
    Spark's nearest: the malformed record's raw text in that column, the record kept. `schema`: the
    hinted one, in place of the declared one."""
    options = {k: str(v) for k, v in source.options.items()}
    schema = schema or source.schema_ddl
    if cloud and source.schema_hints:
        options["cloudFiles.schemaHints"] = source.schema_hints
    if cloud and source.schema_evolution:
        options["cloudFiles.schemaEvolutionMode"] = source.schema_evolution
    rescued = source.rescued_data_column
    if rescued and on_databricks:
        options["rescuedDataColumn"] = rescued
    elif rescued:
        options["columnNameOfCorruptRecord"] = rescued
        schema = _with_string_column(schema, rescued)
    if corrupt_record and schema:
        options["columnNameOfCorruptRecord"] = CORRUPT_RECORD
        schema = _with_string_column(schema, CORRUPT_RECORD)
    return options, schema


def _with_string_column(schema: str | None, name: str) -> str | None:
    """A declared schema with a string column `name` (where Spark puts a malformed record's text)."""
    return f"{schema}, {name} STRING" if schema and name not in ddl_columns(schema) else schema


def applies_hints_itself(source: SourceSpec, streaming: bool, auto_loader: bool) -> bool:
    """Whether Spark, not Auto Loader, must apply the source's `schema_hints` (every read but an Auto
    Loader stream)."""
    return isinstance(source, FilesSource) and bool(source.schema_hints) and not (streaming and auto_loader)


def hinted_schema(spark: SparkSession, source: FilesSource, base_dir: Path) -> str:
    """The schema Spark infers for the files now (as a batch read with the source's options), with each
    hinted column's type replaced by its hint and hinted columns the files lack added: Auto Loader's
    `schemaHints` over an inferred schema. Analyzes: call it outside a pipeline query function."""
    options, _ = file_read_options(source, cloud=False, on_databricks=False)
    inferred = spark.read.format(source.format).options(**options).load(source.resolved_path(base_dir)).schema
    hints = {name.lower(): (name, kind) for name, kind in ddl_fields(source.schema_hints or "")}
    fields = []
    for field in inferred.fields:
        _, kind = hints.pop(field.name.lower(), (field.name, field.dataType.simpleString()))
        fields.append(f"`{field.name.replace('`', '``')}` {kind}")
    fields += [f"`{name.replace('`', '``')}` {kind}" for name, kind in hints.values()]
    return ", ".join(fields)


class TableReader(SourceReader[TableSource]):
    """An existing table, read as-is: a batch only (`TableSource.can_stream` is False, so no table
    reading it is a streaming table; the base's `stream` says so if asked)."""

    def batch(self, spark: SparkSession, source: TableSource, options: ReadOptions) -> DataFrame:
        return read_table(spark, source.table, streaming=False)


class DeltaCdfReader(SourceReader[DeltaCdfSource]):
    """A Delta table's change data feed, by name or location, the same on Databricks: as a stream each
    run reads the commits since the last (its checkpoint), as a batch the whole feed each run. Without
    `preimages`, an update arrives once, as its postimage (what AUTO CDC keyed by version wants)."""

    def batch(self, spark: SparkSession, source: DeltaCdfSource, options: ReadOptions) -> DataFrame:
        return self._load(spark.read, source, options)

    def stream(self, spark: SparkSession, source: DeltaCdfSource, options: ReadOptions) -> DataFrame:
        return self._load(spark.readStream, source, options)

    @staticmethod
    def _load(reader: Any, source: DeltaCdfSource, read: ReadOptions) -> DataFrame:
        reader = reader.format("delta").options(**source.reader_options)
        feed = (reader.table(source.table) if source.table is not None
                else reader.load(resolved_path(source.path, read.base_dir)))
        return feed if source.preimages else feed.where(F.col("_change_type") != "update_preimage")


class JdbcReader(SourceReader[JdbcSource]):
    """A database table or query over JDBC, read whole (a batch only); with an `incremental_column`,
    the rows landed so far from it, whole or as a stream of those new since the last run. Spark reads
    the columns when the reader is loaded: a database that cannot be reached, a refused login or a
    missing table fails the table here, naming the URL (which holds no secret) and never the password."""

    def batch(self, spark: SparkSession, source: JdbcSource, options: ReadOptions) -> DataFrame:
        if source.lands and options.landing is not None:
            return spark.read.table(options.landing)
        return database_rows(spark, source, options.base_dir)

    def stream(self, spark: SparkSession, source: JdbcSource, options: ReadOptions) -> DataFrame:
        if not source.lands or options.landing is None:
            return super().stream(spark, source, options)
        return spark.readStream.table(options.landing)


def database_rows(spark: SparkSession, source: JdbcSource, base_dir: Path) -> DataFrame:
    """The database table or query as it is now, read lazily (its columns are read here)."""
    reader = spark.read.format("jdbc").options(**source.reader_options)
    password = credential(source.password, source.password_env, f"the password of {source.url}",
                          "source.password", base_dir)
    if password is not None:
        reader = reader.option("password", password)
    try:
        return reader.load()
    except Exception as exc:  # noqa: BLE001 - Spark's JDBC errors name the driver's cause; add where
        cause = describe_error(exc)
        if password:  # a driver may echo what it was given
            cause = cause.replace(password, "***")
        raise RunError(Problem(f"could not read {source.table or 'the query'} from {source.url}: {cause}",
                               key="source")) from None


class KafkaReader(SourceReader[KafkaSource]):
    """Kafka events, as a batch (the offsets from `starting_offsets` to the latest, each run) or as a
    stream (each run from where the last stopped), the value decoded into columns by `value_format` and
    where each event came from kept in the `_kafka` struct. A JSON value that does not parse keeps its text
    in `_corrupt_record` (`corrupt_record`), for the `malformed_record` check to quarantine."""

    def batch(self, spark: SparkSession, source: KafkaSource, options: ReadOptions) -> DataFrame:
        if source.starting_offsets == "latest":
            raise RunError(Problem("a batch read of Kafka cannot start at the latest offsets (it would read nothing)",
                                   key="source.starting_offsets", value="latest",
                                   hint="use earliest or offsets per partition, or run in streaming mode"))
        return self._decode(self._load(spark.read, source, options), source, options)

    def stream(self, spark: SparkSession, source: KafkaSource, options: ReadOptions) -> DataFrame:
        return self._decode(self._load(spark.readStream, source, options), source, options)

    @staticmethod
    def _load(reader: Any, source: KafkaSource, options: ReadOptions) -> DataFrame:
        reachable_broker(source.servers)
        reader = reader.format("kafka").options(**source.reader_options)
        jaas = credential(source.jaas_config, source.jaas_config_env, f"the credentials of "
                          f"{source.bootstrap_servers} (kafka.sasl.jaas.config)", "source.jaas_config", options.base_dir)
        if jaas is not None:
            reader = reader.option("kafka.sasl.jaas.config", jaas)
        return reader.load()

    @staticmethod
    def _decode(events: DataFrame, source: KafkaSource, read: ReadOptions) -> DataFrame:
        origin = F.struct(F.col("key").cast("string").alias("key"), "topic", "partition", "offset",
                          "timestamp").alias(KAFKA_COLUMN)
        if source.value_format == "string":
            return events.select(F.col("value").cast("string").alias("value"), origin)
        if source.value_format == "avro":
            from pyspark.sql.avro.functions import from_avro

            value = from_avro(F.col("value"), str(source.value_schema))
        else:
            schema, parse = str(source.value_schema), {"mode": "PERMISSIVE"}
            if read.corrupt_record:
                schema += f", {CORRUPT_RECORD} STRING"
                parse["columnNameOfCorruptRecord"] = CORRUPT_RECORD
            value = F.from_json(F.col("value").cast("string"), schema, parse)
        return events.select(value.alias("_value"), origin).select("_value.*", KAFKA_COLUMN)


def reachable_broker(servers: str, key: str = "source.bootstrap_servers", timeout: float = 10.0) -> None:
    """Fail now, naming the address, when no bootstrap server takes a TCP connection: Kafka's client
    would retry for minutes (measured: 185 s) and then name no address."""
    reasons = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except (OSError, ValueError) as exc:
            reasons.append(f"{server.strip()}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
    raise RunError(Problem(f"no Kafka broker can be reached ({'; '.join(reasons)})", key=key,
                           hint="check the address and that the broker is up and reachable from this machine"))


register_reader("files", FilesReader())
register_reader("table", TableReader())
register_reader("delta_cdf", DeltaCdfReader())
register_reader("jdbc", JdbcReader())
register_reader("kafka", KafkaReader())


def read_table(spark: SparkSession, name: str, streaming: bool) -> DataFrame:
    """A table as a batch or (reading only what is new) a stream."""
    return spark.readStream.table(name) if streaming else spark.read.table(name)
