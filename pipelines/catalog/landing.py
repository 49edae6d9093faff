"""Landing a database's new rows: a JDBC source with an `incremental_column` is read incrementally by
appending, each run, the rows whose cursor is above the landing table's high-water mark (its largest
cursor so far; all rows the first time) to `{table}__ldp_landing`, a Delta table beside the table. The
table then reads the landing table as any Delta table: as a stream in streaming mode, whole in batch.

The mark is the landed rows' own maximum, not a separate state file, so it moves in the same commit as
the rows: a run that fails before the append lands nothing and the next one reads the same rows again;
one that fails after it has landed them once, and the table's stream reads them on the next run. The
filter is pushed down to the database (`WHERE cursor > mark`), so only new rows cross the wire.

A `lookback` reads that far below the mark again (`WHERE cursor > mark - lookback`), for rows that
commit late with a cursor below the mark (a timestamp set when a long transaction began); the rows of
that window landed before are not landed again (`exceptAll` against the landing table's window), so
each row still lands once.

Every runner lands before it reads: the Spark runner per table, the SDP driver before it defines the
pipeline, and on Databricks the job's `land` task before the pipeline update (a pipeline's query
functions may not write)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.sources import database_rows
from pipelines.core.config import TableConfig
from pipelines.core.errors import Problem, RunError, describe_error
from pipelines.core.plan import TablePlan
from pipelines.core.sources import JdbcSource
from pipelines.core.vocabulary import landing_name, unquoted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Landed:
    """What one landing did: the landing table (unquoted), the mark it read above (None: the first
    landing, every row), the mark the landing table holds now and how many rows it landed."""

    landing: str
    since: Any
    mark: Any
    rows: int


def landing_sources(tables: tuple[TablePlan, ...]) -> Iterator[tuple[str, TableConfig]]:
    """The tables and flows of `tables` whose source lands (each lands under its own name), each with
    the name of the table it feeds."""
    for table in tables:
        for config in [table.config, *(table.config.flow_config(flow) for flow in table.config.flows)]:
            if config.source is not None and config.source.lands:
                yield table.name, config


def land(spark: SparkSession, config: TableConfig, qualified: Callable[[str], str], base_dir: Path,
         rows: bool = True) -> Landed:
    """Append `config`'s source rows above the landing's mark to its landing table (`qualified` names
    it as this runner writes it). `rows=False` only creates the landing table, empty, if it is missing
    (a dry run: the pipeline's queries can then resolve, and the first real run still lands every row)."""
    source = config.source
    assert isinstance(source, JdbcSource) and source.incremental_column is not None
    landing, column = qualified(landing_name(config.name)), source.incremental_column
    exists = spark.catalog.tableExists(unquoted(landing))
    if exists and not rows:
        return Landed(unquoted(landing), None, None, 0)
    new = database_rows(spark, source, base_dir)
    if column not in new.columns:
        raise RunError(Problem(f"the incremental_column {column!r} is not a column of {source.table or 'the query'} "
                               f"from {source.url} (its columns: {', '.join(new.columns)})",
                               table=config.name, key="source.incremental_column", value=column))
    landed = spark.read.table(landing) if exists else None
    since = landed.agg(F.max(column)).first()[0] if landed is not None else None
    if not rows:
        new = new.where(F.lit(False))
    elif landed is not None and since is not None:
        low = since if source.lookback is None else _below(spark, since, source.lookback, config.name, column)
        new = new.where(F.col(column) > F.lit(low))  # pushed down to the database
        if source.lookback is not None and set(new.columns) <= set(landed.columns):  # what is landed stays once
            new = new.exceptAll(landed.where(F.col(column) > F.lit(low)).select(*new.columns))
    version = _last_commit(spark, landing)["version"] if exists else None
    try:  # one commit: the rows and the mark they move land together, or neither does
        new.write.format("delta").mode("append").option("mergeSchema", "true").saveAsTable(landing)
    except Exception as exc:  # noqa: BLE001 - a read that fails mid-way: where, and the driver's reason
        raise RunError(Problem(f"could not land the new rows of {source.table or 'the query'} from {source.url}: "
                               f"{describe_error(exc)}", table=config.name, key="source")) from None
    commit = _last_commit(spark, landing)  # an append of nothing commits nothing
    count = 0 if commit["version"] == version else int(commit["operationMetrics"].get("numOutputRows", 0))
    after = spark.read.table(landing)  # above the old mark only: Delta's file statistics skip the rest
    mark = (after if since is None else after.where(F.col(column) > F.lit(since))).agg(F.max(column)).first()[0]
    mark = since if mark is None else mark
    log.info("%s: landed %d row(s) of %s with %s above %s; its mark is now %s", config.name, count, source.url,
             column, since, mark)
    return Landed(unquoted(landing), since, mark, count)


def _last_commit(spark: SparkSession, landing: str) -> Row:
    return spark.sql(f"DESCRIBE HISTORY {landing} LIMIT 1").first()


def _below(spark: SparkSession, mark: Any, lookback: int | float | str, table: str, column: str) -> Any:
    """The mark less the lookback (a number, or an interval such as '15 minutes'), as Spark computes it."""
    span = F.expr(f"INTERVAL {lookback}") if isinstance(lookback, str) else F.lit(lookback)
    try:
        return spark.range(1).select(F.lit(mark) - span).first()[0]
    except Exception:  # noqa: BLE001 - a span below a numeric cursor, a number below a timestamp
        raise RunError(Problem(f"a lookback of {lookback!r} cannot be taken from the mark {mark!r} of "
                               f"{column}: give a number for a numeric cursor, a span such as '15 minutes' for a "
                               "date or timestamp", table=table,
                               key="source.lookback", value=lookback)) from None
