"""The plan as pipeline datasets: `pyspark.pipelines` (or legacy `dlt`) definitions, nothing executed.

Per table, the same transformation function the Spark runner calls, fed with its upstream tables
read the pipeline's way (`spark.read.table(name)` inside the query function, so the runtime sees each
dependency), defined by the `dp` call its planned output kind maps to in `DECORATORS`. Batch mode:
materialized views. Streaming mode: tables with a file source become streaming tables (Auto Loader on
Databricks), the tables downstream materialized views, as the Spark runner does. A table with checks becomes three datasets:

    {name}__checked   temporary view: the transformation plus DQX's _errors/_warnings columns
                      (plus native expectations where the runtime has them: event-log metrics)
    {name}            rows without errors, with _warnings (drop: same; fail: a failing row fails it)
    {name}_quarantine rows with errors, with _errors and _warnings (on_error: quarantine only)

so the tables have exactly the Spark runner's contents and schemas on every runtime. A table with
`cdc:` is a streaming table fed by `dp.create_auto_cdc_flow` (LDP's parameters, as config.yml names
them) from `{name}__cdc_feed`, a temporary view of its change feed read as a stream, checked rows only;
one with `snapshot_cdc:` is fed by `dp.create_auto_cdc_from_snapshot_flow` from `{name}__snapshot` (or
a function returning each next version, with `version_by`).

A table with a contract (`columns:`) has its transformation's rows guarded (`quality.contract`): the
same verdict as the Spark runner's, read through `typeof` since a query may not read its schema. An
enforced contract is also the dataset's `schema=` (with DQX's result columns); masks and `row_filter`
go to Databricks' `dp` only, open-source SDP has neither.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.pyspark_compat import lazy_aggregations
from pipelines.catalog.sources import (applies_hints_itself, flows_rows, hinted_schema, read_table,
                                      transformation_inputs, without_columns)
from pipelines.catalog.storage import configured_format
from pipelines.core.config import PipelineSettings, TableConfig
from pipelines.core.changes import DECLARATIONS_PROPERTY, declarations_property
from pipelines.core.contracts import ContractMode, schema_ddl
from pipelines.core.errors import EngineError, Problem
from pipelines.core.loader import Transformation, call_transformation
from pipelines.core.outputs import (AppendFlow, CdcTarget, MaterializedView, Output, OutputHandlers,
                                    SnapshotCdcTarget, StreamingTable)
from pipelines.core.plan import Plan, TablePlan
from pipelines.core.sinks import delivered_in_pipeline
from pipelines.core.table_properties import property_value
from pipelines.core.vocabulary import ERRORS, RESULT_COLUMNS, WARNINGS, OnError
from pipelines.quality.contract import guarded
from pipelines.quality.dqx_adapter import result_schema
from pipelines.quality.enforce import Expectations, quarantine_config

from .query_errors import query_function_error

log = logging.getLogger(__name__)
CHECKED_SUFFIX = "__checked"
QUARANTINE_FLOW_SUFFIX = "__quarantine"  # a flow's failing rows, flowing into its table's quarantine
CDC_FEED_SUFFIX = "__cdc_feed"
SNAPSHOT_SUFFIX = "__snapshot"
UPDATE_ID_CONF = "spark.pipelines.updateId"  # readable while a Databricks pipeline registers its graph
Query = Callable[[], DataFrame]
Decorator = Callable[..., Callable[[Query], Any]]

# output kind -> the `dp` decorator that defines it (a streaming query makes `dp.table` a streaming table)
DECORATORS: OutputHandlers[Callable[[Any], Decorator]] = OutputHandlers("LDP registrar", {
    MaterializedView: lambda dp: dp.materialized_view,
    StreamingTable: lambda dp: dp.table,
})


def pipeline_api() -> ModuleType:
    """`pyspark.pipelines` (Spark 4.1+, current Databricks runtimes), else the legacy `dlt` module."""
    try:
        from pyspark import pipelines as dp
    except ImportError:  # older Databricks runtimes
        import dlt as dp  # type: ignore[import-not-found,no-redef]
    return dp


def has_native_expectations(dp: Any) -> bool:
    return callable(getattr(dp, "expect_all", None))


def table_datasets(table: TablePlan) -> list[str]:
    """The stored datasets of one table: itself, and its quarantine table under on_error: quarantine."""
    config = table.config
    if config.has_expectations and config.on_error is OnError.QUARANTINE:
        return [config.name, quarantine_config(config).name]
    return [config.name]


def flow_datasets(plan: Plan) -> dict[str, str]:
    """Each append flow of `flows:` (and its quarantine flow) -> the dataset it writes: the flows that
    are not named after their dataset."""
    found = {}
    for table in plan.tables:
        datasets = table_datasets(table)
        for flow in table.append_flows:
            found[flow.name] = datasets[0]
            if len(datasets) > 1:
                found[flow.name + QUARANTINE_FLOW_SUFFIX] = datasets[1]
    return found


def pipeline_datasets(plan: Plan) -> list[str]:
    """Names of the tables a plan's selection refreshes (main and quarantine tables)."""
    return [name for table in plan.tables for name in table_datasets(table)]


@dataclass
class Registrar:
    """Defines every table of a plan through `dp`; `auto_loader` reads streamed files with cloudFiles;
    `empty_sources` reads no source row (a dry run resolves every flow on empty inputs)."""

    spark: SparkSession
    plan: Plan
    functions: dict[str, Transformation]
    dp: Any
    auto_loader: bool = False
    empty_sources: bool = False
    sink_functions: Mapping[str, Callable[..., object]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.expectations = Expectations(self.spark, self.plan.config)
        self.native = has_native_expectations(self.dp)

    def register(self, tables: Iterable[TablePlan] | None = None) -> None:
        """Define the given tables (default: every table of the plan)."""
        for table in self.plan.tables if tables is None else tables:
            self.register_table(table)

    def register_table(self, table: TablePlan) -> None:
        config, output = table.config, table.output
        if isinstance(output, SnapshotCdcTarget):
            self._register_snapshot_cdc(table)
            return
        if isinstance(output, CdcTarget):
            self._register_cdc(table)
            return
        self._register_sinks(table)
        if table.append_flows:
            self._register_flows(table)
            return
        if config.flows:
            self._define_union_of_flows(table)
            return
        query = self._query(table)
        if not config.has_expectations:
            self._define(config, output, query)
            return
        checked_name = config.name + CHECKED_SUFFIX
        self._define_checked(config, checked_name, query)
        self._split_checked(config, output, checked_name)

    def _split_checked(self, config: TableConfig, output: Output, checked_name: str) -> None:
        """The table from the checked view's passing rows (on_error: fail raises on a failing one), and
        under on_error: quarantine its quarantine table, of the table's own kind, from the failing ones."""
        passing, failing = self._passing_and_failing(config, checked_name, output.reads_stream)
        self._define(config, output, passing, (WARNINGS,))
        if failing is not None:
            self._define(quarantine_config(config), output, failing, RESULT_COLUMNS)

    def _passing_and_failing(self, config: TableConfig, checked_name: str,
                             streaming: bool) -> tuple[Query, Query | None]:
        """The checked view's passing rows (on_error: fail raises on a failing one) and, under on_error:
        quarantine, its failing rows (None: they go nowhere)."""
        rows: Query = functools.partial(read_table, self.spark, checked_name, streaming)
        passing: Query = (lambda: _fail_on_errors(rows(), config.name)) if config.on_error is OnError.FAIL \
            else (lambda: _without_errors(rows()))
        failing = (lambda: rows().where(F.col(ERRORS).isNotNull())) if config.on_error is OnError.QUARANTINE else None
        return passing, failing

    def _register_sinks(self, table: TablePlan) -> None:
        """On Databricks, the sinks a streaming table's pipeline delivers itself (`delivered_in_pipeline`),
        each fed by an append flow reading the table as a stream (without DQX's columns): `delta`
        (append) and `kafka` as `dp.create_sink`, `python` as a `foreach_batch_sink` calling the project's
        function with each micro-batch and Spark's batch id; the run's id is the pipeline's update id.
        Open-source SDP has no `foreach_batch_sink`, and there the local runners write every sink after
        the table, from the rows it gained (the same rows, once each)."""
        foreach_batch_sink = getattr(self.dp, "foreach_batch_sink", None)
        if foreach_batch_sink is None:
            return
        from pipelines.catalog import delta_sink, kafka_sink, python_sink  # noqa: F401 - their writers
        from pipelines.catalog.sinks import SinkRun, writer_class

        update_id = self.spark.conf.get(UPDATE_ID_CONF, None) or "pipeline"
        run = SinkRun(update_id, base_dir=self.plan.config.base_dir, functions=self.sink_functions)
        for sink in delivered_in_pipeline(table.config.sinks, table.output.appends):
            name = pipeline_sink_name(table.name, sink)
            lakeflow = writer_class(sink.type)(run).lakeflow(sink, table.name)
            if lakeflow.handler is not None:
                foreach_batch_sink(name=name)(_named(lakeflow.handler, name))  # type: ignore[arg-type]
            else:
                self.dp.create_sink(name=name, format=lakeflow.format, options=lakeflow.options)

            def new_rows(rows: Callable[[DataFrame], DataFrame] = lakeflow.rows) -> DataFrame:
                return rows(without_columns(self.spark.readStream.table(table.name), RESULT_COLUMNS))

            self.dp.append_flow(target=name, name=f"{name}_flow")(_named(new_rows, f"{name}_flow"))

    def _register_flows(self, table: TablePlan) -> None:
        """`flows:` in streaming mode: `dp.create_streaming_table` (and its quarantine's), then one
        `dp.append_flow` per flow, named after it. A flow with checks reads `{flow}__checked` (a
        temporary view of its rows with DQX's columns): its passing rows flow into the table, its
        failing ones into the quarantine through `{flow}__quarantine`. A `once` flow reads its input in
        batch with `once=True` on Databricks; open-source SDP's `append_flow` has no `once`, so there it
        reads its input as a stream, which its checkpoint reads a single time (a backfill's input does
        not grow: the same rows)."""
        config = table.config
        datasets = [(config, (WARNINGS,) if config.has_expectations else ())]
        if config.has_expectations and config.on_error is OnError.QUARANTINE:
            datasets.append((quarantine_config(config), RESULT_COLUMNS))
        for dataset, result_columns in datasets:
            self.dp.create_streaming_table(**self._options(dataset, self.dp.create_streaming_table, result_columns))
        once = "once" in inspect.signature(self.dp.append_flow).parameters
        for flow in table.append_flows:
            self._register_flow(table, flow, once)

    def _register_flow(self, table: TablePlan, flow: AppendFlow, once: bool) -> None:
        """One append flow of `flows:` (see `_register_flows`); `once`: whether `append_flow` takes it."""
        config = table.config
        reading = table.flow_plan(flow.name)
        if flow.once and not once:
            reading = _once_as_stream(table, reading)
        query = self._query(reading, streaming_inputs=reading.streaming)
        options = {"once": True} if flow.once and once else {}
        if not config.has_expectations:
            self.dp.append_flow(target=config.name, name=flow.name, **options)(_named(query, flow.name))
            return
        checked_name = flow.name + CHECKED_SUFFIX
        self._define_checked(reading.config, checked_name, query)
        passing, failing = self._passing_and_failing(config, checked_name, reading.streaming)
        self.dp.append_flow(target=config.name, name=flow.name, **options)(_named(passing, flow.name))
        if failing is not None:
            name = f"{flow.name}{QUARANTINE_FLOW_SUFFIX}"
            self.dp.append_flow(target=quarantine_config(config).name, name=name, **options)(_named(failing, name))

    def _define_union_of_flows(self, table: TablePlan) -> None:
        """`flows:` in batch mode: one table of all the flows' rows (each flow's checked as it reads),
        as the Spark runner recomputes it."""
        config = table.config
        queries = {flow.name: self._query(table.flow_plan(flow.name)) for flow in config.flows}

        def union() -> DataFrame:
            return flows_rows(table, lambda reading: self._checked_rows(reading.config, queries[reading.name]()))

        if not config.has_expectations:
            self._define(config, table.output, lambda: flows_rows(table, lambda reading: queries[reading.name]()))
            return
        checked_name = config.name + CHECKED_SUFFIX
        self.dp.temporary_view(name=checked_name, comment=f"{config.name}'s flows with DQX results")(
            _named(union, checked_name))
        self._split_checked(config, table.output, checked_name)

    def _checked_rows(self, reading: TableConfig, rows: DataFrame) -> DataFrame:
        """`rows` with DQX's `_errors`/`_warnings` for the checks of `reading` (as they are, without checks)."""
        checked = self.expectations.apply(reading, rows, analyze=False)
        return rows if checked is None else checked.df

    def _register_cdc(self, table: TablePlan) -> None:
        """The change feed as a streaming temporary view (its failing rows to the quarantine), applied
        to a streaming table by `create_auto_cdc_flow`, as LDP documents AUTO CDC."""
        config, feed = table.config, table.config.name + CDC_FEED_SUFFIX
        assert config.cdc is not None
        query = self._query(dataclasses.replace(table, output=StreamingTable()), streaming_inputs=True)
        passing = self._passing_rows(config, query, StreamingTable())
        self.dp.temporary_view(name=feed, comment=f"the change feed applied to {config.name}")(_named(passing, feed))
        self.dp.create_streaming_table(**_table_options(config, self.plan.pipeline, self.dp.create_streaming_table,
                                                        self.plan.config.base_dir))
        self.dp.create_auto_cdc_flow(**config.cdc.flow_kwargs(config.name, feed, struct=F.struct))

    def _register_snapshot_cdc(self, table: TablePlan) -> None:
        """A streaming table kept by `create_auto_cdc_from_snapshot_flow`. Its source: without
        `version_by`, `{name}__snapshot`, a temporary view of the input's passing rows that LDP re-reads
        on each update; with it, a function LDP calls with the latest version applied, which returns the
        next version's passing rows (`NextSnapshot`). Failing rows go to a quarantine view either way."""
        config = table.config
        spec = config.snapshot_cdc
        assert spec is not None
        query = self._query(dataclasses.replace(table, output=MaterializedView()))
        passing = self._passing_rows(config, query, MaterializedView())
        source: Any
        if spec.version_by is None:
            source = config.name + SNAPSHOT_SUFFIX
            self.dp.temporary_view(name=source, comment=f"the snapshot applied to {config.name}")(
                _named(passing, source))
        else:  # called outside the dataflow graph: it computes the checks itself, it cannot read a view
            source = NextSnapshot(lambda: self._passing(config, query()), spec.version_by)
        self.dp.create_streaming_table(**_table_options(config, self.plan.pipeline, self.dp.create_streaming_table,
                                                        self.plan.config.base_dir))
        self.dp.create_auto_cdc_from_snapshot_flow(**spec.flow_kwargs(config.name, source))

    def _passing_rows(self, config: TableConfig, query: Query, output: Output) -> Query:
        """The rows of `query` that pass the table's checks (all of them for a table without checks), read
        from `{name}__checked`; under on_error: quarantine the failing rows go to the quarantine table, of
        kind `output`."""
        if not config.has_expectations:
            return query
        checked_name = config.name + CHECKED_SUFFIX
        self._define_checked(config, checked_name, query)
        rows: Query = functools.partial(read_table, self.spark, checked_name, output.reads_stream)
        if config.on_error is OnError.QUARANTINE:
            self._define(quarantine_config(config), output, lambda: rows().where(F.col(ERRORS).isNotNull()),
                         RESULT_COLUMNS)
        return lambda: _only_passing(rows(), config)

    def _passing(self, config: TableConfig, rows: DataFrame) -> DataFrame:
        """The `rows` passing the table's checks, computed outside the graph (all of them without checks)."""
        checked = self.expectations.apply(config, rows, analyze=False)
        return rows if checked is None else _only_passing(checked.df, config)

    def _query(self, table: TablePlan, streaming_inputs: bool = False) -> Query:
        config = table.config
        read = self.spark.readStream.table if streaming_inputs else self.spark.read.table
        base_dir = self.plan.config.base_dir
        hinted = (hinted_schema(self.spark, config.source, base_dir)  # type: ignore[arg-type]
                  if config.source is not None and applies_hints_itself(config.source, table.streaming,
                                                                         self.auto_loader) else None)

        def query() -> DataFrame:  # inside the graph: may not analyze, so the hinted schema comes from outside
            inputs = transformation_inputs(self.spark, table, base_dir, read, auto_loader=self.auto_loader,
                                           empty_sources=self.empty_sources, hinted=hinted,
                                           landing=_in_pipeline_schema)
            function = self.functions[config.name]
            try:
                with lazy_aggregations():  # groupBy(...).sum("c") without reading the schema (Connect)
                    rows = call_transformation(function, inputs, self.spark)
                return guarded(config, rows, schema_checked=False,  # type: ignore[arg-type]
                               streaming=table.streaming or streaming_inputs)
            except EngineError:
                raise
            except Exception as exc:  # noqa: BLE001 - told with the table, file and line at fault
                raise query_function_error(config.name, function, exc) from exc

        return query

    def input_rows(self, table: TablePlan) -> DataFrame:
        """The table's transformation over its inputs, read in batch (streamed sources read whole)."""
        return self._query(dataclasses.replace(table, output=MaterializedView()))()

    def batch_rows(self, table: TablePlan) -> DataFrame:
        """What the table's flows compute, read in batch (streamed sources read whole), with DQX's
        `_errors`/`_warnings` for a table with checks: to compare a stored table with its query."""
        whole = dataclasses.replace(table, output=MaterializedView())
        if table.config.flows:
            return flows_rows(whole, lambda reading: self._checked_rows(reading.config, self._query(reading)()))
        return self._checked_rows(table.config, self._query(whole)())

    def _define_checked(self, config: TableConfig, name: str, query: Query) -> None:
        def checked() -> DataFrame:
            result = self.expectations.apply(config, query(), analyze=False)
            assert result is not None
            return result.df

        decorated: Callable[..., Any] = _named(checked, name)
        if self.native:  # metrics of every SQL-expressible check in the event log; rows kept
            native = self.expectations.native(config)
            expectations = {name: sql for level in native.values() for name, sql in level.items()}
            if expectations:
                decorated = self.dp.expect_all(expectations)(decorated)
        self.dp.temporary_view(name=name, comment=f"{config.name} with DQX results (_errors, _warnings)")(decorated)

    def _define(self, config: TableConfig, output: Output, query: Query, result_columns: tuple[str, ...] = ()) -> None:
        """Define one table of the transformation's (guarded) rows plus DQX's `result_columns`."""
        decorator = DECORATORS[output](self.dp)
        decorator(**self._options(config, decorator, result_columns))(_named(query, config.name))

    def _options(self, config: TableConfig, define: Callable[..., Any], result_columns: tuple[str, ...]
                 ) -> dict[str, Any]:
        """A dataset's options for `define`; an enforced contract's schema (with DQX's `result_columns`)."""
        declared = self.plan.config.base_dir if config.name in self.plan.config.by_name else None
        options = _table_options(config, self.plan.pipeline, define, declared)
        if config.columns and config.contract is ContractMode.ENFORCED:  # its schema is known in full
            options["schema"] = schema_ddl(config.columns, masks=_on_databricks(define), extra=[
                (name, result_schema().simpleString()) for name in result_columns])
        return options


def _once_as_stream(table: TablePlan, reading: TablePlan) -> TablePlan:
    """A `once` flow where `append_flow` has no `once` (open-source SDP): its files, Kafka topic or change
    feed read as a stream, which its checkpoint reads a single time (`batch_backfills` refuses the rest)."""
    problems = batch_backfills(table)
    if problems:
        raise EngineError(problems)
    return dataclasses.replace(reading, output=StreamingTable())


def batch_backfills(table: TablePlan) -> list[Problem]:
    """The table's `once` flows that open-source SDP cannot run: its `append_flow` has no `once`, and a
    batch flow into a streaming table is refused (BATCH_RELATION_FOR_STREAMING_TABLE), so only a backfill
    whose source can be read as a stream has a way in."""
    problems = []
    for flow in (f for f in table.config.flows if f.once and table.output.reads_stream):
        if flow.source is None or not flow.source.can_stream:
            what = f"a {flow.source.type} source" if flow.source is not None else "upstream tables"
            problems.append(Problem(
                f"flow '{flow.name}' is a once backfill of {what}, which open-source SDP cannot append to a "
                "streaming table (its append_flow has no once, and it refuses a batch flow into a streaming "
                "table)", file=None, table=table.name, key="flows.once", value=True,
                hint="run it with --runner spark (Databricks has once flows), or backfill from files"))
    return problems


def pipeline_sink_name(table: str, sink: Any) -> str:
    """The name of a sink a pipeline delivers itself, from its table and target: unique in the pipeline,
    readable in its graph, and stable while the target is (its flow's checkpoint goes by the name)."""
    return f"{table}__sink_{sink.type}_{re.sub(r'[^0-9A-Za-z]+', '_', sink.target(table)).strip('_')}"


def _on_databricks(define: Callable[..., Any]) -> bool:
    """Whether `define` is Databricks' `dp` (row filters and column masks), not open-source SDP's."""
    return "row_filter" in inspect.signature(define).parameters


def _table_options(config: TableConfig, pipeline: PipelineSettings, define: Callable[..., Any],
                   base_dir: Path | None = None) -> dict[str, Any]:
    """The table's options as the `dp` function `define` takes them (config.yml's names are LDP's). On
    Databricks a declared table (`base_dir` given) also carries its declarations' digests as a property,
    which `plan --target databricks` compares with config.yml."""
    options: dict[str, Any] = {"name": config.name, "comment": config.comment}
    if config.row_filter and _on_databricks(define):
        options["row_filter"] = str(config.row_filter)
    if config.partition_cols:
        options["partition_cols"] = list(config.partition_cols)
    if config.cluster_by:
        options["cluster_by"] = list(config.cluster_by)
    elif config.cluster_by_auto and "cluster_by_auto" in inspect.signature(define).parameters:
        options["cluster_by_auto"] = True  # Databricks' dp only
    properties = {k: property_value(v) for k, v in config.table_properties.items()}
    if base_dir is not None and _on_databricks(define):
        properties[DECLARATIONS_PROPERTY] = declarations_property(config, base_dir)
    if properties:
        options["table_properties"] = properties
    fmt = configured_format(config, pipeline)  # else the runtime's default, as the Spark runner's
    if fmt:
        options["format"] = fmt
    return options


def _in_pipeline_schema(name: str) -> str:
    """A table outside the graph (a landing table), named as the pipeline's queries read it: unqualified,
    it resolves in the pipeline's own catalog and schema, where the land step wrote it."""
    return name


def _named(query: Query, name: str) -> Query:
    """Flows are named after their function when no name is given; keep it readable in errors."""
    query.__name__ = name
    query.__qualname__ = name
    return query


@dataclass(frozen=True)
class NextSnapshot:
    """The `source` function of `create_auto_cdc_from_snapshot_flow` for versioned snapshots: called
    with the latest version applied (None at first), it returns the next later version's rows, without
    the version column, and that version; None when there is none."""

    rows: Query
    version_by: str

    def __call__(self, latest_version: Any) -> tuple[DataFrame, Any] | None:
        rows = self.rows()
        later = rows if latest_version is None else rows.where(F.col(self.version_by) > F.lit(latest_version))
        version = later.agg(F.min(self.version_by)).first()[0]
        if version is None:
            return None
        return rows.where(F.col(self.version_by) == F.lit(version)).drop(self.version_by), version


def _only_passing(rows: DataFrame, config: TableConfig) -> DataFrame:
    """Checked rows without the failing ones (on_error: fail raises on the first) or the DQX columns."""
    if config.on_error is OnError.FAIL:
        return without_columns(_fail_on_errors(rows, config.name), RESULT_COLUMNS)
    return without_columns(rows.where(F.col(ERRORS).isNull()), RESULT_COLUMNS)


def _without_errors(rows: DataFrame) -> DataFrame:
    """The table's rows: those that passed every error-level check, keeping `_warnings`."""
    return without_columns(rows.where(F.col(ERRORS).isNull()), (ERRORS,))


def _fail_on_errors(rows: DataFrame, table: str) -> DataFrame:
    """on_error: fail — the first row failing an error-level check fails the update, naming the checks."""
    failure = F.raise_error(F.concat(
        F.lit(f"table {table}: a row failed error-level check(s) "),
        F.array_join(F.col(ERRORS)["name"], ", "),
        F.lit(" and on_error is 'fail'")))
    return _without_errors(rows.where(F.when(F.col(ERRORS).isNotNull(), failure).isNull()))
