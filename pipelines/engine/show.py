"""`ldp_engine show`: a table as the most recent run that wrote it left it, whichever runner that was.

The Spark runner keeps its catalog in the state folder, the SDP runner its own in `{state}/sdp`; the run
records (`{state}/runs`) say which runner wrote a table last, so `show` reads that catalog and names the
run. The rows come from the table's Delta files (deltalake; `--where` through DuckDB), without starting a
JVM, at its current version or an earlier one (`--version`, `--as-of`); only where the files cannot
answer (see `pipelines.catalog.reader`) does Spark read them.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipelines.catalog.reader import StoredTable, TimeTravel, UnknownVersion, stored_table
from pipelines.core.config import Config
from pipelines.core.errors import ConfigError, Problem, UsageError
from pipelines.core.vocabulary import QUARANTINE_SUFFIX, unquoted

log = logging.getLogger(__name__)
LOCAL_RUNNERS = ("spark", "sdp")  # the runners whose tables are stored under the state folder


@dataclass(frozen=True)
class Shown:
    table: str
    columns: list[str]
    rows: list[dict[str, Any]]
    run: dict[str, Any] | None = None  # the run whose catalog was read (None: no run record)
    reader: str = "files"  # files | spark

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "columns": self.columns, "rows": self.rows, "run": self.run,
                "reader": self.reader}


@dataclass(frozen=True)
class Request:
    name: str  # NAME or SCHEMA.NAME
    where: str | None = None
    columns: tuple[str, ...] = ()
    limit: int = 20
    verbose: bool = False
    travel: TimeTravel = TimeTravel()


def show_table(config: Config, state: Path, request: Request) -> Shown:
    """The rows `request` asks for, from the catalog of the newest run that wrote the table."""
    schema, table, run, catalog, stored = locate(config, state, request.name)
    if stored is not None:
        opened = _open(stored, request)
        if opened is not None:
            rows = _file_rows(f"{schema}.{table}", *opened, request)
            if rows is not None:
                return Shown(f"{schema}.{table}", rows[0], rows[1], run)
    if not any((catalog / part).exists() for part in ("metastore_db", "warehouse")):
        raise ConfigError(Problem(f"table {schema}.{table} does not exist", value=request.name,
                                  hint=f"nothing is stored in {catalog} yet: run the pipeline first"))
    version = None
    if not request.travel.current:
        if stored is None or not stored.is_delta:
            raise UsageError(Problem(f"table {schema}.{table} keeps no versions here", value=request.name))
        version = _checked(stored.version_at, request)
    columns, rows, full_name = _spark_rows(config, catalog, request, version)
    return Shown(f"{full_name}", columns, rows, run, reader="spark")


def time_travel(version: int | None, as_of: str | None) -> TimeTravel:
    """--version / --as-of as a TimeTravel (at most one of them; timestamps are UTC unless they say)."""
    if version is not None and as_of is not None:
        raise UsageError(Problem("--version and --as-of exclude each other", key="--as-of", value=as_of))
    if as_of is None:
        return TimeTravel(version=version)
    try:
        stamp = datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(Problem("--as-of takes 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601", key="--as-of",
                                 value=as_of)) from None
    return TimeTravel(as_of=stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc))


def locate(config: Config, state: Path, name: str
           ) -> tuple[str, str, dict[str, Any] | None, Path, StoredTable | None]:
    """Schema, table, the run that last wrote it (None: no record), that run's catalog folder and the
    table's files there (None: not found, or only Spark can tell)."""
    schema, _, table = name.rpartition(".")
    schema = schema or config.pipeline.schema_name
    owner = _owner(config, table) if schema == config.pipeline.schema_name else None
    record = last_run(state / "runs", owner or table)
    catalog = catalog_root(state, record)
    return schema, table, _run_info(record, catalog), catalog, stored_table(catalog, schema, table)


def _open(stored: StoredTable, request: Request) -> Any:
    return _checked(stored.open, request)


def _checked(read: Any, request: Request) -> Any:
    """`read(request.travel)`, an unknown version a usage error listing the versions there are."""
    try:
        return read(request.travel)
    except UnknownVersion as exc:
        raise UsageError(Problem(str(exc), value=request.travel.version or str(request.travel.as_of),
                                 hint=f"versions: {version_ranges(exc.versions)}" if exc.versions else None)) from None


def version_ranges(versions: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    spans: list[list[int]] = []
    for version in sorted(versions):
        if spans and version == spans[-1][1] + 1:
            spans[-1][1] = version
        else:
            spans.append([version, version])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _owner(config: Config, table: str) -> str | None:
    """The pipeline table whose rows `table` holds: itself, or the table it is the quarantine of."""
    if table in config.by_name:
        return table
    base = table[: -len(QUARANTINE_SUFFIX)] if table.endswith(QUARANTINE_SUFFIX) else None
    return base if base in config.by_name else None


def last_run(runs: Path, table: str) -> dict[str, Any] | None:
    """The newest local run record whose selection held `table`; else the newest local record; None
    without any. A Databricks pipeline update (`--runner pipeline`) wrote nothing on this machine."""
    latest = _read(runs / "latest.json")
    if latest is not None and _local(latest) and table in latest.get("selection", ()):
        return latest
    records = local_run_records(runs)
    selected = [r for r in records if table in r.get("selection", ())]
    return max(selected or records, key=lambda r: r.get("finished_at") or 0, default=None)


def local_run_records(runs: Path) -> list[dict[str, Any]]:
    """Every readable record under `runs` of a run that wrote on this machine (`latest.json`, a copy of
    the newest, included: callers take the newest or a set of names)."""
    return [r for r in map(_read, runs.glob("*.json")) if r is not None and _local(r)]


def _local(record: dict[str, Any]) -> bool:
    return record.get("summary", {}).get("runner", "spark") in LOCAL_RUNNERS


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def catalog_root(state: Path, record: dict[str, Any] | None) -> Path:
    """Where the run's runner keeps its catalog: the SDP runner its own, every other the state folder."""
    runner = (record or {}).get("summary", {}).get("runner")
    return state / "sdp" if runner == "sdp" else state


def _run_info(record: dict[str, Any] | None, catalog: Path) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"run_id": record.get("run_id"), "runner": record.get("summary", {}).get("runner"),
            "started_at": _iso(record.get("started_at")), "finished_at": _iso(record.get("finished_at")),
            "catalog": str(catalog)}


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_run(shown: Shown) -> str:
    """One line for stderr: which run's table this is."""
    if shown.run is None:
        return f"{shown.table}: no run record, read from the state folder"
    run = shown.run
    return (f"{shown.table} as written by run {run['run_id']} ({run['runner']} runner, "
            f"finished {run['finished_at']})")


def _file_rows(full_name: str, data: Any, names: list[str], request: Request
               ) -> tuple[list[str], list[dict[str, Any]]] | None:
    """Rows from the files; None when the condition needs Spark (DuckDB cannot evaluate it)."""
    wanted = list(request.columns) or names
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise UsageError(Problem(f"--where / --columns cannot be applied to {full_name}: no column "
                                 f"{', '.join(unknown)}", value=",".join(request.columns),
                                 hint=f"columns: {', '.join(names)}"))
    if request.where:
        table = _where(data, wanted, request.where, request.limit)
        if table is None:
            return None
    else:
        table = data.head(request.limit, columns=wanted) if request.limit else data.schema.empty_table()
        table = table.select(wanted)
    return wanted, [_plain(row) for row in table.to_pylist(maps_as_pydicts="strict")]


def _where(data: Any, columns: list[str], where: str, limit: int) -> Any:
    """`SELECT columns WHERE where LIMIT limit` on the files through DuckDB; None if it cannot run it
    (not installed, or Spark SQL it does not speak: Spark then decides, with its own error)."""
    try:
        import duckdb
    except ImportError:
        return None
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    connection = duckdb.connect()
    try:
        connection.register("stored", data)
        relation = connection.sql(f"SELECT {select} FROM stored WHERE ({where}) LIMIT {int(limit)}")
        export = getattr(relation, "to_arrow_table", None) or relation.arrow  # 2.0's name; 1.x's `arrow`
        return export()
    except duckdb.Error as exc:
        log.info("--where left to Spark: %s", str(exc).splitlines()[0])
        return None
    finally:
        connection.close()


def _plain(value: Any) -> Any:
    """Values as Spark's `Row.asDict` gives them: timestamps naive in UTC (the session's time zone)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _spark_rows(config: Config, catalog: Path, request: Request, version: int | None = None
                ) -> tuple[list[str], list[dict[str, Any]], str]:
    """The same rows through a local Spark session on `catalog` (a JVM start): for what the files
    cannot answer, and for Spark's own errors (unknown tables, a condition it rejects)."""
    from pyspark.errors import AnalysisException, PySparkException

    from pipelines.catalog.session import get_spark
    from pipelines.catalog.storage import TableStore

    spark = get_spark(catalog, verbose=request.verbose)
    store = TableStore(spark, config.pipeline, catalog)
    schema, _, table = request.name.rpartition(".")
    full_name = f"{schema}.{table}" if schema else unquoted(store.fqn(table))
    if not spark.catalog.tableExists(full_name):
        in_schema = full_name.rpartition(".")[0]
        existing = sorted(t.name for t in spark.catalog.listTables(in_schema)) \
            if spark.catalog.databaseExists(in_schema) else []
        raise ConfigError(Problem(f"table {full_name} does not exist", value=request.name, hint=(
            f"tables in {in_schema}: {', '.join(existing)}" if existing
            else f"nothing is stored in {in_schema} yet: run the pipeline first")))
    quoted = ".".join(f"`{part}`" for part in full_name.split("."))
    df = spark.table(quoted) if version is None else spark.read.option("versionAsOf", version).table(quoted)
    try:
        if request.where:
            df = df.where(request.where)
        if request.columns:
            df = df.select(*request.columns)
        rows = [row.asDict(recursive=True) for row in df.limit(request.limit).collect()]
    except (AnalysisException, PySparkException) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise UsageError(Problem(f"--where / --columns cannot be applied to {full_name}: {reason}",
                                 value=request.where or ",".join(request.columns),
                                 hint=f"columns: {', '.join(spark.table(full_name).columns)}")) from None
    return list(df.columns), rows, full_name
