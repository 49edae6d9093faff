"""Source types are a registry keyed by `type:`: a new type is one spec class plus its registration
(and one reader on the Spark side), and config errors name it like the built-in ones."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from pipelines.catalog import sources as readers
from pipelines.core import sources
from pipelines.core.config import FilesSource, TableConfig, TableSource, parse_config
from pipelines.core.sources import DeltaCdfSource
from pipelines.core.errors import ConfigError, Problem, RunError
from pipelines.core.source_checks import source_problems
from tests.toy_types import register_source_type


class ToySource(sources.SourceSpec):
    """A made-up source: `rows` generated rows, streamable, one pre-Spark check."""

    type: Literal["toy"]
    rows: int = Field(ge=0)
    label: str = "toy"

    @property
    def can_stream(self) -> bool:
        return True

    def problems(self, base_dir: Path, table: str) -> list[Problem]:
        return [Problem("zero rows", table=table, key="source.rows")] if self.rows == 0 else []


class ToyReader(readers.SourceReader[ToySource]):
    def batch(self, spark, source, options):
        return ("batch", source.rows, options.base_dir)

    def stream(self, spark, source, options):
        return ("stream", source.rows, options.base_dir)


@pytest.fixture
def toy(monkeypatch):
    """The toy type registered for one test only (the registries are restored after it)."""
    return register_source_type(monkeypatch, ToySource, ToyReader())


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("cfg/config.yml"))
    return [p.render() for p in caught.value.problems]


def test_built_in_types_are_registered_and_say_whether_they_stream():
    assert sources.source_types() == ("files", "table", "delta_cdf", "jdbc", "kafka")
    assert FilesSource(type="files", format="csv", path="p").can_stream
    assert not TableSource(type="table", table="main.raw.a").can_stream


def test_a_registered_toy_type_is_validated_from_config(toy):
    config = parse_config("tables:\n- {name: a, layer: bronze, source: {type: toy, rows: 3}}\n",
                          Path("config.yml"))
    source = config.table("a").source
    assert source == ToySource(type="toy", rows=3) and source.can_stream
    assert not config.table("a").has_expectations  # not a parsed format: no implicit check
    [bad, unknown] = problems_of("tables:\n- {name: a, layer: bronze, source: {type: toy, rows: -1}}\n"
                                 "- {name: b, layer: bronze, source: {type: toy, rows: 1, lable: x}}\n")
    assert "table 'a'" in bad and "key 'source.rows'" in bad and "-1" in bad
    assert "table 'b'" in unknown and "unknown key 'lable'" in unknown and "did you mean 'label'?" in unknown
    assert "valid keys: label, rows, type" in unknown


def test_unknown_or_missing_type_lists_every_registered_type(toy):
    [unknown] = problems_of("tables:\n- {name: c, layer: silver, source: {type: rest}}\n")
    assert unknown.startswith("cfg/config.yml:2") and "table 'c', key 'source.type'" in unknown
    assert "unknown source type; expected 'files', 'table', 'delta_cdf', 'jdbc', 'kafka', 'toy'" in unknown and "'rest'" in unknown
    [missing] = problems_of("tables:\n- {name: c, layer: silver, source: {rows: 1}}\n")
    assert "source needs a 'type' (files, table, delta_cdf, jdbc, kafka or toy)" in missing


def test_the_toy_type_is_unknown_once_its_test_is_over():
    [message] = problems_of("tables:\n- {name: a, layer: bronze, source: {type: toy, rows: 3}}\n")
    assert "unknown source type; expected 'files', 'table'" in message


def test_a_source_types_own_checks_run_before_spark(toy):
    config = parse_config("tables:\n- {name: a, layer: bronze, source: {type: toy, rows: 0}}\n",
                          Path("cfg/config.yml"))
    [problem] = source_problems(config, config.tables)
    assert (problem.message, problem.table, problem.key, problem.file) == (
        "zero rows", "a", "source.rows", "cfg/config.yml")


def test_read_source_dispatches_on_the_type(toy, tmp_path):
    source = ToySource(type="toy", rows=2)
    assert readers.read_source(None, source, tmp_path, streaming=False) == ("batch", 2, tmp_path)
    assert readers.read_source(None, source, tmp_path, streaming=True) == ("stream", 2, tmp_path)
    table = TableConfig(name="t", layer="bronze", source=source)  # a spec instance is taken as is
    assert table.source is source


def test_registration_is_checked():
    class Untyped(sources.SourceSpec):
        type: str

    with pytest.raises(TypeError, match="one-value Literal"):
        sources.register_source(Untyped)

    class Imposter(sources.SourceSpec):
        type: Literal["files"]

    with pytest.raises(ValueError, match="registered already"):
        sources.register_source(Imposter)
    with pytest.raises(ValueError, match="no source spec is registered as 'nope'"):
        readers.register_reader("nope", ToyReader())


def test_a_table_source_error_is_located_at_its_key():
    [message] = problems_of("tables:\n- {name: c, layer: silver, source: {type: table, table: 'a b'}}\n")
    assert "key 'source.table'" in message and "catalog.schema.table" in message


def test_an_unknown_key_in_a_files_source_lists_all_its_keys():
    [message] = problems_of("tables:\n- {name: a, layer: bronze, source: {type: files, format: csv, "
                            "path: p, optionz: {}}}\n")
    assert "did you mean 'options'? valid keys: format, include_metadata, options, path, rescued_data_column, schema, schema_evolution, schema_hints, type" in message


def test_a_table_source_is_read_as_a_batch_only_and_asked_for_a_stream_says_so(tmp_path):
    assert readers.TableReader.stream is readers.SourceReader.stream  # no stream reader of its own
    with pytest.raises(RunError, match="a 'table' source cannot be read as a stream"):
        readers.read_source(None, TableSource(type="table", table="main.raw.a"), tmp_path, streaming=True)


def test_a_delta_cdf_source_names_one_table_and_one_start():
    ok = parse_config("tables:\n- {name: a, layer: bronze, source: {type: delta_cdf, table: main.raw.users, "
                      "starting_version: 3}}\n", Path("config.yml")).table("a").source
    assert ok.can_stream and ok.reader_options == {"readChangeFeed": "true", "startingVersion": "3"}
    assert DeltaCdfSource(type="delta_cdf", path="p", starting_timestamp="2026-12-01").reader_options == {
        "readChangeFeed": "true", "startingTimestamp": "2026-12-01"}
    assert DeltaCdfSource(type="delta_cdf", path="p").reader_options["startingVersion"] == "0"  # whole feed
    bad = problems_of("tables:\n"
                      "- {name: a, layer: bronze, source: {type: delta_cdf}}\n"
                      "- {name: b, layer: bronze, source: {type: delta_cdf, path: p, table: main.raw.u}}\n"
                      "- {name: c, layer: bronze, source: {type: delta_cdf, path: p, starting_version: 1, "
                      "starting_timestamp: '2026-12-01'}}\n"
                      "- {name: d, layer: bronze, source: {type: delta_cdf, path: p, starting_version: -1}}\n"
                      "- {name: e, layer: bronze, source: {type: delta_cdf, path: p, starting_timestamp: yesterday}}\n"
                      "- {name: f, layer: bronze, source: {type: delta_cdf, table: 'a b'}}\n")
    assert len(bad) == 6, bad
    assert "table 'a', key 'source'" in bad[0] and "(table) or its location (path), exactly one" in bad[0]
    assert "table 'b', key 'source'" in bad[1] and "exactly one" in bad[1]
    assert "table 'c'" in bad[2] and "starting_version or starting_timestamp, not both" in bad[2]
    assert "table 'd', key 'source.starting_version'" in bad[3] and "-1" in bad[3]
    assert "table 'e', key 'source.starting_timestamp'" in bad[4] and "'yesterday'" in bad[4]
    assert "table 'f', key 'source.table'" in bad[5] and "catalog.schema.table" in bad[5]


def test_more_file_formats_are_validated_with_their_own_options(tmp_path):
    (tmp_path / "in").mkdir()

    def problems(source: str) -> list[str]:
        config = parse_config(f"tables:\n- {{name: a, layer: bronze, source: {source}}}\n", tmp_path / "config.yml")
        return [p.render() for p in source_problems(config, config.tables)]

    assert problems("{type: files, format: xml, path: in, options: {rowTag: row}, include_metadata: true}") == []
    assert problems("{type: files, format: text, path: in, options: {wholetext: true}}") == []
    assert problems("{type: files, format: binaryFile, path: in, options: {pathGlobFilter: '*.png'}}") == []
    [missing] = problems("{type: files, format: xml, path: in}")
    assert "key 'source.options.rowTag'" in missing and "the element that holds one row" in missing
    [unknown] = problems("{type: files, format: orc, path: in, options: {rowTag: row}}")
    assert "unknown orc reader option 'rowTag'" in unknown


def test_a_jdbc_source_reads_a_table_or_a_query_and_never_holds_a_password():
    from pipelines.core.plan import build_plan
    from pipelines.core.sources import JdbcSource

    config = parse_config("tables:\n- {name: a, layer: bronze, source: {type: jdbc, url: 'jdbc:postgresql://db:5432/shop',"
                          " table: public.orders, user: reader, password_env: SHOP_PASSWORD, partition_column: id,"
                          " lower_bound: 1, upper_bound: 1000, num_partitions: 4, fetchsize: 500}}\n",
                          Path("config.yml"))
    source = config.table("a").source
    assert not source.can_stream and source.reader_options == {
        "url": "jdbc:postgresql://db:5432/shop", "dbtable": "public.orders", "user": "reader",
        "driver": "org.postgresql.Driver", "partitionColumn": "id", "lowerBound": "1", "upperBound": "1000", "numPartitions": "4", "fetchsize": "500"}
    assert build_plan(config).local_packages == ("org.postgresql:postgresql:42.7.14",)  # the driver, locally
    from pipelines.core.source_checks import source_warnings

    assert source_warnings(config, config.tables) == []  # batch: nothing to say
    [warning] = source_warnings(config, config.tables, mode="streaming")
    assert warning.render() == ("config.yml, table 'a', key 'source.type': in streaming mode this table is a "
                                "materialized view, read whole and replaced each run: a JDBC source is read in batch "
                                "only (a database table is no stream; give an incremental_column to read only the rows "
                                "new since the last run) (got 'jdbc')")
    other = JdbcSource(type="jdbc", url="jdbc:sqlserver://db:1433;databaseName=shop", query="SELECT 1",
                       driver_package="com.microsoft.sqlserver:mssql-jdbc:12.8.1.jre11")
    assert other.local_packages == ("com.microsoft.sqlserver:mssql-jdbc:12.8.1.jre11",)
    assert JdbcSource(type="jdbc", url="jdbc:oracle:thin:@db:1521/shop", table="t").local_packages == ()

    url = "url: 'jdbc:postgresql://db/shop'"
    bad = problems_of("tables:\n"
                      f"- {{name: a, layer: bronze, source: {{type: jdbc, {url}}}}}\n"
                      f"- {{name: b, layer: bronze, source: {{type: jdbc, {url}, table: t, query: 'select 1'}}}}\n"
                      f"- {{name: c, layer: bronze, source: {{type: jdbc, {url}, table: t, password: hunter2}}}}\n"
                      "- {name: d, layer: bronze, source: {type: jdbc, url: 'jdbc:postgresql://db/shop?password=hunter2',"
                      " table: t}}\n"
                      f"- {{name: e, layer: bronze, source: {{type: jdbc, url: 'postgresql://db/shop', table: t}}}}\n"
                      f"- {{name: f, layer: bronze, source: {{type: jdbc, {url}, table: t, partition_column: id}}}}\n"
                      f"- {{name: g, layer: bronze, source: {{type: jdbc, {url}, query: 'select 1', partition_column: id,"
                      " lower_bound: 1, upper_bound: 9, num_partitions: 2}}\n"
                      f"- {{name: h, layer: bronze, source: {{type: jdbc, {url}, table: t, partition_column: id,"
                      " lower_bound: 9, upper_bound: 1, num_partitions: 2}}\n"
                      f"- {{name: i, layer: bronze, source: {{type: jdbc, {url}, table: t, password_env: 'my password'}}}}\n"
                      f"- {{name: j, layer: bronze, source: {{type: jdbc, {url}, table: t, options: {{Password: x}}}}}}\n"
                      f"- {{name: k, layer: bronze, source: {{type: jdbc, {url}, table: t, num_partitions: 0}}}}\n")
    assert len(bad) == 11, bad
    assert "table 'a', key 'source'" in bad[0] and "(table) or a query (query), exactly one" in bad[0]
    assert "exactly one" in bad[1]
    assert "table 'c', key 'source.password'" in bad[2] and "a credential never goes in config.yml" in bad[2] \
        and "${secret.SCOPE.KEY}" in bad[2] and "*_env" in bad[2] and "hunter2" not in bad[2]
    assert "table 'd', key 'source.url'" in bad[3] and "must not carry a password" in bad[3]
    assert "table 'e', key 'source.url'" in bad[4] and "jdbc:postgresql://host:5432/database" in bad[4]
    assert "table 'f'" in bad[5] and "missing: lower_bound, upper_bound, num_partitions" in bad[5]
    assert "table 'g'" in bad[6] and "use table, not query" in bad[6]
    assert "table 'h'" in bad[7] and "lower_bound (9) must be below upper_bound (1)" in bad[7]
    assert "table 'i', key 'source.password_env'" in bad[8] and "'my password'" in bad[8]
    assert "table 'j'" in bad[9] and "a password never goes in config.yml" in bad[9]
    assert "table 'k', key 'source.num_partitions'" in bad[10]
    assert not any("hunter2" in problem for problem in bad), bad  # never echoed back


def test_an_incremental_jdbc_source_lands_and_its_table_streams_in_streaming_mode():
    from pipelines.core.changes import plan_changes
    from pipelines.core.plan import build_plan
    from pipelines.core.source_checks import source_warnings

    text = ("tables:\n- {name: a, layer: bronze, source: {type: jdbc, url: 'jdbc:postgresql://db/shop', table: t,"
            " incremental_column: updated_at}}\n")
    config = parse_config(text, Path("config.yml"))
    source = config.table("a").source
    assert source.lands and source.can_stream and source.batch_only_reason is None
    assert "incremental_column" not in str(source.reader_options)  # the filter is the landing's, not the reader's
    assert [t.streaming for t in build_plan(config, mode="streaming").tables] == [True]
    assert [t.streaming for t in build_plan(config).tables] == [False]
    assert source_warnings(config, config.tables, mode="streaming") == []  # it streams: nothing to warn of
    # the landing table is the table's own: dropped with it when config.yml no longer declares the table
    later = parse_config("tables:\n- {name: b, layer: bronze, source: {type: table, table: x}}\n", Path("config.yml"))
    drops = plan_changes(later, [], {"a": {}, "a__ldp_landing": {}}, written_before=["a"])
    assert [(c.table, c.action.value) for c in drops] == [("a", "drop"), ("a__ldp_landing", "drop")]

    [bad] = problems_of(text.replace("updated_at", "'updated at; drop table t'"))
    assert "table 'a', key 'source.incremental_column'" in bad and "a column of the database's rows that only grows" \
        in bad
    assert parse_config(text.replace("updated_at", "updated_at, lookback: '2 hours'"), Path("c.yml")).table(
        "a").source.lookback == "2 hours"
    for lookback, key, said in (("'2 fortnights'", "source.lookback", "a number below a numeric cursor, or a span"),
                                ("-3", "source.lookback", "a number below a numeric cursor, or a span"),
                                ("true", "source.lookback", "a number below a numeric cursor, or a span")):
        [bad] = problems_of(text.replace("updated_at", f"updated_at, lookback: {lookback}"))
        assert f"table 'a', key '{key}'" in bad and said in bad, bad
    [bad] = problems_of(text.replace(" incremental_column: updated_at", " lookback: 5"))
    assert "table 'a', key 'source'" in bad and "lookback needs an incremental_column" in bad, bad


def test_a_kafka_source_subscribes_once_decodes_by_format_and_never_holds_credentials():
    from pipelines.core.kafka_source import KafkaSource

    ok = KafkaSource(type="kafka", bootstrap_servers="b1:9092,b2:9092", topic="orders,returns",
                     value_format="avro", value_schema='{"type": "record", "name": "O", "fields": []}',
                     jaas_config_env="EVENTHUB_JAAS", options={"kafka.security.protocol": "SASL_SSL"})
    assert ok.can_stream and ok.flags_malformed_records is False and ok.reader_options == {
        "kafka.security.protocol": "SASL_SSL", "kafka.bootstrap.servers": "b1:9092,b2:9092",
        "subscribe": "orders,returns", "startingOffsets": "earliest"}
    assert [p.split(":")[1] for p in ok.local_packages] == ["spark-sql-kafka-0-10_2.13", "spark-avro_2.13"]
    assert KafkaSource(type="kafka", bootstrap_servers="b:1", subscribe_pattern="orders_.*", value_format="json",
                       value_schema="id INT").flags_malformed_records  # a JSON value that does not parse

    servers = "bootstrap_servers: 'b:9092'"
    bad = problems_of("tables:\n"
                      f"- {{name: a, layer: bronze, source: {{type: kafka, {servers}}}}}\n"
                      f"- {{name: b, layer: bronze, source: {{type: kafka, {servers}, topic: t, subscribe_pattern: 't.*'}}}}\n"
                      f"- {{name: c, layer: bronze, source: {{type: kafka, {servers}, topic: t, value_format: json}}}}\n"
                      f"- {{name: d, layer: bronze, source: {{type: kafka, {servers}, topic: t, value_schema: 'id INT'}}}}\n"
                      f"- {{name: e, layer: bronze, source: {{type: kafka, {servers}, topic: t, value_format: avro,"
                      " value_schema: 'id INT'}}\n"
                      f"- {{name: f, layer: bronze, source: {{type: kafka, {servers}, topic: t, starting_offsets: first}}}}\n"
                      f"- {{name: g, layer: bronze, source: {{type: kafka, {servers}, topic: t,"
                      " options: {kafka.sasl.jaas.config: 'x password=\"hunter2\";'}}}\n"
                      f"- {{name: h, layer: bronze, source: {{type: kafka, {servers}, topic: t, options: {{subscribe: u}}}}}}\n"
                      f"- {{name: i, layer: bronze, source: {{type: kafka, {servers}, topic: t, value_format: xml}}}}\n")
    assert len(bad) == 9, bad
    assert "table 'a', key 'source'" in bad[0] and "(topic) or a pattern of topic names (subscribe_pattern)" in bad[0]
    assert "table 'b'" in bad[1] and "exactly one" in bad[1]
    assert "table 'c'" in bad[2] and "value_format json needs value_schema (a DDL schema" in bad[2]
    assert "table 'd'" in bad[3] and "value_schema is for value_format json or avro" in bad[3]
    assert "table 'e'" in bad[4] and "the Avro schema in JSON" in bad[4]
    assert "table 'f', key 'source.starting_offsets'" in bad[5] and "earliest, latest or offsets" in bad[5]
    assert "table 'g', key 'source.options'" in bad[6] and "credentials never go in config.yml" in bad[6]
    assert "table 'h', key 'source.options'" in bad[7] and "'subscribe' is set by this source's own key: use topic" \
        in bad[7]
    assert "table 'i', key 'source.value_format'" in bad[8]
    assert not any("hunter2" in problem for problem in bad), bad
