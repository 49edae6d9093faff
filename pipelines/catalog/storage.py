"""Where tables are written and read: the catalog, with Delta's atomic rewrites and streaming appends.

Tables are Delta, locally as on Databricks. A rewrite is one `CREATE OR REPLACE TABLE ... AS SELECT`
commit: a failed write leaves the previous version current, and every version stays in the table's
history (`ldp_engine history`, `show --version`, `restore`). What Delta does not do is here:

- a checked table and its quarantine come from one computation, checkpointed once, then two commits;
- table options from config.yml (partitioning, liquid clustering, properties, comment) on every write;
- streams: each micro-batch written with Delta's idempotent-write options, so a retried batch
  duplicates nothing, and a stream rebuilt from its inputs replaces the table in its first batch;
- the run id in every commit's `userMetadata`, so a table's history joins the run records.

Another format (`format: parquet`) is written by Spark's plain overwrite, which is not atomic.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.appended import local_table, rows_after
from pipelines.core.config import PipelineSettings, TableConfig
from pipelines.core.errors import Problem, RunError
from pipelines.core.outputs import CdcTarget, MaterializedView, Output, OutputHandlers, StreamingTable
from pipelines.core.sql import sql_literal
from pipelines.core.table_properties import property_value
from pipelines.core.vocabulary import CDC_EVENTS_SUFFIX, unquoted

from .session import on_databricks

log = logging.getLogger(__name__)
DELTA = "delta"
FLOWS_FOLDER = "flows"  # a table's flows' checkpoints, inside its own checkpoint folder
RUN_ID_CONF = "spark.databricks.delta.commitInfo.userMetadata"  # Delta writes it into each commit
APPLIED_PROPERTY = "ldp.cdc.applied"  # on a CDC target's events table: the spec digest and target version they made
_DELTA_INVALID = re.compile(r"[ ,;{}()\n\t=]")
Accept = Callable[[], None]  # raises to refuse the write
T = TypeVar("T")


@dataclass(frozen=True)
class MicroBatch:
    """One micro-batch of a stream: `app_id` and `batch_id` make its writes idempotent
    (Delta's txnAppId/txnVersion); `replace` on the first batch of a stream rebuilt from its inputs."""

    app_id: str
    batch_id: int
    replace: bool


@dataclass(frozen=True)
class WriteMode:
    """How an output kind's rows land in its table: `overwrite` replaces them on each run, `append`
    adds to what earlier runs wrote (so the table holds more than this run's rows)."""

    name: str
    keeps_earlier_rows: bool


OVERWRITE = WriteMode("overwrite", keeps_earlier_rows=False)
APPEND = WriteMode("append", keeps_earlier_rows=True)
APPLY_CHANGES = WriteMode("apply_changes", keeps_earlier_rows=True)

# output kind -> its write mode in the catalog
WRITE_MODES: OutputHandlers[WriteMode] = OutputHandlers("catalog storage", {
    MaterializedView: OVERWRITE,
    StreamingTable: APPEND,
    CdcTarget: APPLY_CHANGES,
})


def configured_format(table: TableConfig, settings: PipelineSettings) -> str | None:
    """The format config.yml asks for: the table's, else the pipeline's; None if neither says."""
    return table.format or settings.format


def table_format(table: TableConfig, settings: PipelineSettings) -> str:
    """The format a table is written in: as configured, else Delta (locally as on Databricks)."""
    return configured_format(table, settings) or DELTA


@dataclass(frozen=True)
class TableStore:
    """The tables of one pipeline (catalog.schema) plus the local folder for checkpoints."""

    spark: SparkSession
    settings: PipelineSettings
    state: Path

    def fqn(self, name: str) -> str:
        parts = [self.settings.catalog] if self.settings.catalog and on_databricks() else []
        return ".".join(f"`{p}`" for p in parts + [self.settings.schema_name, name])

    def ensure_schema(self) -> None:
        prefix = f"`{self.settings.catalog}`." if self.settings.catalog and on_databricks() else ""
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {prefix}`{self.settings.schema_name}`")

    def format_of(self, table: TableConfig) -> str:
        return table_format(table, self.settings)

    def exists(self, name: str) -> bool:
        return self.spark.catalog.tableExists(self._catalog_name(name))

    def _catalog_name(self, name: str) -> str:
        """fqn without quotes, as the spark.catalog methods take it."""
        return unquoted(self.fqn(name))

    def read(self, name: str) -> DataFrame:
        return self.spark.table(self.fqn(name))

    def read_stream(self, name: str) -> DataFrame:
        """The rows appended to a table since a stream's last batch (a flow reading a streaming table)."""
        return self.spark.readStream.table(self.fqn(name))

    def read_after(self, name: str, after: int | None) -> tuple[DataFrame, int | None]:
        """The rows written to the table after its version `after` (None: all), and its version now."""
        return rows_after(local_table(self.spark, self.fqn(name)), after, lambda: self.read(name))

    def write_mode(self, output: Output) -> WriteMode:
        return WRITE_MODES[output]

    def rows_held(self, output: Output, name: str, rows_written: int) -> int:
        """The rows a table holds after a write of `rows_written`: a rewritten table holds what was
        written, an appended one also what earlier runs appended (counted)."""
        return self.count(name) if self.write_mode(output).keeps_earlier_rows else rows_written

    def count(self, name: str) -> int:
        if not self.exists(name):
            return 0
        self.spark.catalog.refreshTable(self.fqn(name))  # file listings are cached per session
        return self.read(name).count()

    # -- batch ---------------------------------------------------------------------------------

    def write_table(self, table: TableConfig, df: DataFrame, accept: Accept | None = None) -> None:
        """Replace the table with `df` in one commit; `accept` may refuse before anything is written."""
        (accept or _accept_all)()
        self._replace(table, df)
        self.reset_checkpoint(table.name)

    @contextmanager
    def staged(self, table: TableConfig, df: DataFrame) -> Iterator[DataFrame]:
        """`df` computed once, for the writes that follow (a table and its quarantine, and the counts of
        both, from one computation): a local checkpoint, kept in the executors' memory and disk with no
        lineage to recompute, so every write reads the same rows even from a source that changes. A
        scratch Delta table did the same at twice the cost (bench/dq_overhead.py: 11.3 s against 6.2 s
        for 1M checked rows). A lost executor fails the write instead of recomputing a part of it."""
        stored = df.localCheckpoint(eager=True)
        try:
            yield stored
        finally:
            stored.unpersist()

    @contextmanager
    def staged_with(self, table: TableConfig, df: DataFrame,
                    metrics: list[Column]) -> Iterator[tuple[DataFrame, dict[str, Any]]]:
        """`staged`, and `metrics` aggregated over its rows: on a classic session observed while it is
        computed (no pass of their own: bench/dq_overhead.py); on Spark Connect, whose checkpoint is a
        command that reports no observation, by a pass over the staged rows."""
        if type(df).__module__.startswith("pyspark.sql.connect"):
            with self.staged(table, df) as stored:
                yield stored, stored.agg(*metrics).first().asDict()
            return
        observation = Observation(f"ldp_{uuid.uuid4().hex}")
        with self.staged(table, df.observe(observation, *metrics)) as stored:
            yield stored, observation.get  # the eager checkpoint was its first action: ready

    def write_split(self, table: TableConfig, df: DataFrame, flag: str, other: TableConfig,
                    main_drop: tuple[str, ...] = ()) -> None:
        """Rows of `df` (already computed: see `staged`) where the boolean column `flag` is true
        replace `other`, the rest replace `table` without `main_drop`, both at once (each write is
        mostly Delta's and the catalog's fixed cost, ~1 s here, which overlap). Two commits: a run
        failing in one leaves the other ahead of it until the next run rewrites both."""
        tags = df.sparkSession.getTags()  # per thread: the table's, so a timeout still interrupts its writes

        def replace(target: TableConfig, rows: DataFrame) -> None:
            for tag in tags:
                rows.sparkSession.addTag(tag)
            try:
                self._replace(target, rows)
            finally:
                rows.sparkSession.clearTags()

        with ThreadPoolExecutor(2, thread_name_prefix=f"ldp-split-{table.name}") as pool:
            writes = [pool.submit(replace, other, df.where(f"`{flag}`").drop(flag)),
                      pool.submit(replace, table, df.where(f"NOT `{flag}`").drop(flag, *main_drop))]
        for write in writes:
            write.result()  # the first failure, after both ended
        self.reset_checkpoint(table.name)

    def apply_changes(self, table: TableConfig, events: DataFrame, target_of: Callable[[DataFrame], DataFrame],
                      count: Callable[[DataFrame], T],
                      check: Callable[[DataFrame, DataFrame | None], None] = lambda new, applied: None,
                      by_key: tuple[str, ...] = (), grown: Callable[[int], None] | None = None) -> T:
        """Add `events` to the table's stored change events (an event already stored, e.g. re-read from
        the same files or retried, is kept once), and bring the table to `target_of(all events)`. The
        target is a function of every event seen so far, so the order events arrive in across runs
        changes nothing and a rerun is idempotent. `check(new, applied)` runs before anything is stored
        (`applied` is None when every event is checked at once), so an invalid event is never stored.
        The target is written before the events: a run failing between the two leaves them new to the
        next run. Returns `count(new events)`.

        `by_key`: `target_of` maps each key's events to that key's rows alone, so a run recomputes only
        the keys its new events touch and merges their rows in (one MERGE) instead of rewriting the
        table, while the target is the one the last run left with the same spec (`_applied`). Otherwise
        (first events, changed columns or spec, a target restored or written by anyone else) the target
        is recomputed from every event.

        `grown`: told how many rows the target gained (a type-2 history: the versions the run opened),
        from the MERGE's own metrics, or counted around a whole rewrite."""
        log_table, before = _events_table(table), self.cdc_events(table)
        if before is not None and sorted(before.dtypes) == sorted(events.dtypes):  # only the new ones written
            with self.staged(log_table, events.select(*before.columns).subtract(before)) as new:
                applied = self._applied(table) if by_key else None
                if applied is not None and applied == self._properties(log_table.name).get(APPLIED_PROPERTY):
                    # the stored events of the keys the new ones touch, computed once: all of the history
                    # that the check and the target's function read; the keys' rows too, as MERGE reads its
                    # source twice (measured: 200k stored events were scanned six times for 5k new ones)
                    touched = new.select(*by_key).distinct()
                    with self.staged(log_table, before.join(touched, list(by_key), "left_semi")) as related:
                        check(new, related)
                        counted = count(new)
                        added = 0
                        if not new.isEmpty():  # nothing new: the target is as it was
                            with self.staged(table, target_of(related.unionByName(new))) as their_rows:
                                added = self._merge_keys(table, their_rows, touched)
                            self.append(log_table, new)
                    if grown:
                        grown(added)
                    self._describe(table)  # config.yml's comment and properties: a commit only if they changed
                    self._mark_applied(table, applied)
                    self.reset_checkpoint(table.name)
                    return counted
                check(new, before)
                counted = count(new)
                self._rewrite(table, target_of(before.unionByName(new)), grown)
                self.append(log_table, new)
        else:  # the first events, or events whose columns changed: the stored ones rewritten with them
            seen = events if before is None else before.unionByName(events, allowMissingColumns=True).distinct()
            with self.staged(log_table, seen) as everything:
                check(everything, None)
                counted = count(everything if before is None else everything.subtract(
                    before.unionByName(everything.limit(0), allowMissingColumns=True).select(*everything.columns)))
                self._rewrite(table, target_of(everything), grown)
                self._replace(log_table, everything)
        if by_key:
            self._mark_applied(table)
        self.reset_checkpoint(table.name)
        return counted

    def _mark_applied(self, table: TableConfig, previous: str | None = None) -> None:
        """Record on the events table, once they and the target are written, which target they made."""
        now = self._applied(table)
        if now != previous:
            self._set_properties(_events_table(table).name, {APPLIED_PROPERTY: now or ""})

    def _applied(self, table: TableConfig) -> str | None:
        """The CDC spec's digest and the target's current version: what the events table records after
        each write, so a run can tell the target is the one its last run left (None: no Delta target)."""
        if not self.exists(table.name) or self.format_of(table) != DELTA:
            return None
        spec = table.cdc or table.snapshot_cdc
        digest = hashlib.sha256((spec.model_dump_json() if spec else "").encode()).hexdigest()[:16]
        version = self.spark.sql(f"DESCRIBE HISTORY {self.fqn(table.name)} LIMIT 1").first()["version"]
        return f"{digest}@{version}"

    def _rewrite(self, table: TableConfig, rows: DataFrame, grown: Callable[[int], None] | None) -> None:
        """Replace the table with `rows`, telling `grown` (when given) how many rows it gained."""
        before = self.count(table.name) if grown else 0
        self._replace(table, rows)
        if grown:
            grown(self.count(table.name) - before)

    def _merge_keys(self, table: TableConfig, rows: DataFrame, keys: DataFrame) -> int:
        """Replace every stored row of the (distinct, non-NULL) `keys` with `rows`, in one MERGE commit: a
        key's marker row deletes its stored rows (it matches each once), `rows` never match and are
        inserted. Keys whose rows are unchanged are rewritten too: the cost is the touched files'.
        Returns the rows the table gained, from the MERGE's metrics (no count of its own)."""
        op = "__ldp_merge_op"
        names = keys.columns
        markers = keys.select(*names, *[F.lit(None).cast(rows.schema[c].dataType).alias(c)
                                        for c in rows.columns if c not in names], F.lit("delete").alias(op))
        source = rows.withColumn(op, F.lit("insert")).unionByName(markers)
        view, session = f"ldp_merge_{uuid.uuid4().hex}", rows.sparkSession
        source.createOrReplaceTempView(view)
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in names)
        columns = ", ".join(f"`{c}`" for c in rows.columns)
        try:
            merged = session.sql(
                f"MERGE INTO {self.fqn(table.name)} t USING `{view}` s ON {on} AND s.{op} = 'delete' "
                f"WHEN MATCHED THEN DELETE WHEN NOT MATCHED AND s.{op} = 'insert' THEN INSERT ({columns}) "
                f"VALUES ({', '.join(f's.`{c}`' for c in rows.columns)})").first()
            return merged["num_inserted_rows"] - merged["num_deleted_rows"]
        finally:
            session.catalog.dropTempView(view)

    def _properties(self, name: str) -> dict[str, str]:
        """A table's stored properties."""
        return {row["key"]: row["value"] for row in self.spark.sql(f"SHOW TBLPROPERTIES {self.fqn(name)}").collect()}

    def _set_properties(self, name: str, properties: Mapping[str, Any]) -> None:
        """One commit (on Delta) setting `properties` on the table."""
        self.spark.sql(f"ALTER TABLE {self.fqn(name)} SET TBLPROPERTIES ({_properties(properties)})")

    def drop_cdc_events(self, table: TableConfig) -> None:
        """Forget a CDC target's events (a full refresh): its next write starts from its input alone."""
        self.spark.sql(f"DROP TABLE IF EXISTS {self.fqn(_events_table(table).name)}")

    def cdc_events(self, table: TableConfig) -> DataFrame | None:
        """The change events a CDC target was computed from (None before its first write)."""
        name = _events_table(table).name
        return self.read(name) if self.exists(name) else None

    def _replace(self, table: TableConfig, df: DataFrame) -> None:
        fmt = self.format_of(table)
        if fmt != DELTA:
            self._overwrite_files(table, df, fmt)
            return
        _check_column_names(table, df)
        view, session = f"ldp_write_{uuid.uuid4().hex}", df.sparkSession  # a micro-batch's own session
        df.createOrReplaceTempView(view)
        try:
            session.sql(f"CREATE OR REPLACE TABLE {self.fqn(table.name)} USING delta"
                        f"{_layout(table)}{_comment_and_properties(table)} AS SELECT * FROM `{view}`")
        finally:
            session.catalog.dropTempView(view)

    def _overwrite_files(self, table: TableConfig, df: DataFrame, fmt: str) -> None:
        """A format other than Delta: Spark's overwrite (it drops the old table first: not atomic)."""
        writer = df.write.format(fmt).mode("overwrite").option("overwriteSchema", "true")
        if table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        writer.saveAsTable(self.fqn(table.name))
        self._describe(table)

    def _describe(self, table: TableConfig) -> None:
        """Bring the comment and properties in line with config.yml, writing only what differs (on
        Delta each ALTER is a commit)."""
        name = self.fqn(table.name)
        if table.comment and self.spark.catalog.getTable(self._catalog_name(table.name)).description != table.comment:
            self.spark.sql(f"COMMENT ON TABLE {name} IS {sql_literal(table.comment)}")
        if table.table_properties:
            current = self._properties(table.name)
            wanted = {k: property_value(v) for k, v in table.table_properties.items()}
            changed = {k: v for k, v in wanted.items() if current.get(k) != v}
            if changed:
                self._set_properties(table.name, changed)

    # -- streaming -----------------------------------------------------------------------------

    def for_each_batch(self, table: TableConfig, stream: DataFrame,
                       handle: Callable[[DataFrame, MicroBatch], None],
                       companions: tuple[TableConfig, ...] = (), flow: str | None = None) -> None:
        """Hand each new micro-batch (persisted) to `handle`, which appends it where it belongs with
        `append(..., micro)`; `companions` are tables written alongside; `flow`: one of the table's
        flows, with a checkpoint of its own. Without a checkpoint (first run, or the table was last
        written in batch) the stream starts from all its inputs and its first batch replaces the
        tables: the old rows stay in their history until then."""
        checkpoint = self.checkpoint_dir(table.name, flow)
        rebuild = self._rebuilds(table, companions)
        # the first batch's id and the stream's id, read once, at the first batch: the query wrote its
        # id into the checkpoint's metadata when it started, and keeps it for as long as it runs
        first: list[tuple[int, str]] = []
        failures: list[BaseException] = []

        def each(batch: DataFrame, batch_id: int) -> None:
            if not first:
                first.append((batch_id, _stream_id(checkpoint)))
            first_id, stream_id = first[0]
            micro = MicroBatch(stream_id, batch_id, replace=rebuild and batch_id == first_id)
            batch = batch.persist()
            try:
                handle(batch, micro)
            except BaseException as exc:
                failures.append(exc)
                raise
            finally:
                batch.unpersist()

        query = (stream.writeStream.foreachBatch(each).trigger(availableNow=True)
                 .option("checkpointLocation", str(checkpoint)).start())
        try:
            query.awaitTermination()
        except Exception:
            if failures:  # the batch's own error, not the stream's wrapping of its Python traceback
                raise failures[0] from None
            raise
        self._refreshed((table, *companions))  # foreachBatch wrote via a cloned session

    def append_once(self, table: TableConfig, flow: str, df: DataFrame,
                    handle: Callable[[DataFrame, MicroBatch], None], companions: tuple[TableConfig, ...] = ()
                    ) -> bool:
        """A `once` flow: hand all of `df` (persisted) to `handle` as one micro-batch, unless the flow
        ran already since the table was last rebuilt; whether it ran now. The batch's id is kept in
        the flow's checkpoint before the write, so a retry after a failed run is skipped by Delta if
        the write had committed (idempotent), and the flow is marked done after it."""
        folder = self.checkpoint_dir(table.name, flow)
        done, app = folder / "done", folder / "app_id"
        if done.exists():
            return False
        rebuild = self._rebuilds(table, companions)
        folder.mkdir(parents=True, exist_ok=True)
        if not app.exists():
            app.write_text(f"once-{uuid.uuid4().hex}")
        batch = df.persist()
        try:
            handle(batch, MicroBatch(app.read_text(), 0, replace=rebuild))
        finally:
            batch.unpersist()
        done.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._refreshed((table, *companions))
        return True

    def _rebuilds(self, table: TableConfig, companions: tuple[TableConfig, ...]) -> bool:
        """No checkpoint of the table (nor of any of its flows), but the tables exist: they were written
        in batch (or reset), and the stream's first batch replaces them."""
        return not self.checkpoint_dir(table.name).exists() and any(self.exists(t.name) for t in (table, *companions))

    def _refreshed(self, tables: tuple[TableConfig, ...]) -> None:
        for written in tables:  # written via another session (a stream's clone): refresh this one's cache
            if self.exists(written.name):
                self.spark.catalog.refreshTable(self.fqn(written.name))
                self._describe(written)

    def append(self, table: TableConfig, df: DataFrame, micro: MicroBatch | None = None) -> None:
        """Append rows (a micro-batch) to the table, creating it on first use; a micro-batch that was
        already committed (a retry) is skipped by Delta."""
        if micro is not None and micro.replace or not self.exists(table.name):
            self._replace(table, df)
            return
        fmt = self.format_of(table)
        writer = df.write.format(fmt).mode("append")
        if fmt == DELTA and micro is not None:
            writer = writer.option("txnAppId", micro.app_id).option("txnVersion", micro.batch_id)
        elif table.partition_cols:
            writer = writer.partitionBy(*table.partition_cols)
        writer.saveAsTable(self.fqn(table.name))

    def checkpoint_dir(self, name: str, flow: str | None = None) -> Path:
        """A table's stream checkpoint; a flow's lies inside its table's (reset with it)."""
        folder = self.state / "checkpoints" / self.settings.schema_name / name
        return folder if flow is None else folder / FLOWS_FOLDER / flow

    def reset_checkpoint(self, name: str) -> None:
        shutil.rmtree(self.checkpoint_dir(name), ignore_errors=True)


@contextmanager
def commits_tagged(spark: SparkSession, run_id: str) -> Iterator[None]:
    """Every Delta commit made in the block carries `run_id` as its userMetadata."""
    previous = spark.conf.get(RUN_ID_CONF, None)
    spark.conf.set(RUN_ID_CONF, run_id)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(RUN_ID_CONF)
        else:
            spark.conf.set(RUN_ID_CONF, previous)


def _events_table(table: TableConfig) -> TableConfig:
    """A CDC target's hidden table of the change events applied to it so far."""
    return table.model_copy(update={"name": table.name + CDC_EVENTS_SUFFIX, "partition_cols": (), "cluster_by": (),
                                    "comment": f"change events applied to {table.name}", "table_properties": {}})


def _check_column_names(table: TableConfig, df: DataFrame) -> None:
    """Delta (here and on Databricks) refuses column names with ` ,;{}()=` or whitespace unless the
    table maps columns by name; say which column and how to fix it, where Delta names neither."""
    if table.table_properties.get("delta.columnMapping.mode", "none") != "none":
        return
    bad = [name for name in df.columns if _DELTA_INVALID.search(name)]
    if bad:
        raise RunError(Problem(
            f"column name(s) {', '.join(repr(b) for b in bad)} cannot be stored in a Delta table "
            "(no space or any of ,;{}()= allowed)", table=table.name, key="columns", value=bad[0],
            hint="name the column in the transformation, e.g. F.sum('amount').alias('total_amount'), or "
                 "set table_properties: {delta.columnMapping.mode: name}"))


def _stream_id(checkpoint: Path) -> str:
    """The stream's id from its checkpoint (a new checkpoint is a new stream, whose batch ids restart)."""
    try:
        return "ldp-" + json.loads((checkpoint / "metadata").read_text(encoding="utf-8"))["id"]
    except (OSError, ValueError, KeyError):
        return f"ldp-{checkpoint}"


def _layout(table: TableConfig) -> str:
    """PARTITIONED BY / CLUSTER BY as config.yml asks (CLUSTER BY AUTO only exists on Databricks)."""
    columns = ", ".join(f"`{c}`" for c in table.partition_cols or table.cluster_by)
    if table.partition_cols:
        return f" PARTITIONED BY ({columns})"
    if table.cluster_by:
        return f" CLUSTER BY ({columns})"
    return " CLUSTER BY AUTO" if table.cluster_by_auto and on_databricks() else ""


def _comment_and_properties(table: TableConfig) -> str:
    sql = f" COMMENT {sql_literal(table.comment)}" if table.comment else ""
    if table.table_properties:
        sql += f" TBLPROPERTIES ({_properties(table.table_properties)})"
    return sql


def _accept_all() -> None:
    """Every write is accepted."""


def _properties(properties: Mapping[str, Any]) -> str:
    return ", ".join(f"{sql_literal(k)} = {sql_literal(property_value(v))}" for k, v in properties.items())
