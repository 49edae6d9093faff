"""Read a locally stored table without a JVM: `ldp_engine show` and `history` in ~1 s instead of a
Spark start.

Both local runners write managed tables under `{catalog}/warehouse/{schema}.db/{name}`. A Delta table
(the default) is read with `deltalake` (delta-rs): its current version, any earlier one (time travel)
and its history. A managed table in another format (`format: parquet`) is read from its files.
Anything else (an external location, a format pyarrow cannot read) is `None`: the caller asks Spark.
Nothing here imports pyspark.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import pyarrow.dataset as ds


class UnknownVersion(LookupError):
    """The table has no such version (or nothing as old as the timestamp)."""

    def __init__(self, message: str, versions: list[int]):
        super().__init__(message)
        self.versions = versions


@dataclass(frozen=True)
class TimeTravel:
    """Which version of a table to read: the current one, version N, or the one current at a time."""

    version: int | None = None
    as_of: datetime | None = None  # aware, UTC

    @property
    def current(self) -> bool:
        return self.version is None and self.as_of is None


@dataclass(frozen=True)
class StoredTable:
    """A table's folder in a local catalog."""

    location: Path

    @property
    def is_delta(self) -> bool:
        return (self.location / "_delta_log").is_dir()

    def open(self, travel: TimeTravel = TimeTravel()) -> "tuple[ds.Dataset, list[str]] | None":
        """The table's rows as one dataset and its columns in order; None if Spark must read it."""
        if self.is_delta:
            from deltalake.exceptions import DeltaError

            version = self.version_at(travel)  # an unknown version is the user's error, whoever reads
            try:
                data = self._delta(version).to_pyarrow_dataset()
            except DeltaError:  # a type delta-rs cannot parse yet: Spark Connect's `string collate UTF8_BINARY`
                return _replayed(self.location, version)
            return data, list(data.schema.names)
        if not travel.current:
            raise UnknownVersion(f"{self.location.name} is not a Delta table: it keeps no versions", [])
        return _parquet_files(self.location)

    def history(self) -> list[dict[str, Any]]:
        """Every commit still in the log, newest first: version, time (UTC), run id, operation and rows
        written. Read from the log's JSON commits (each starts with its commitInfo): no table snapshot,
        so a schema delta-rs cannot parse does not hide the history."""
        commits = []
        for path in (self.location / "_delta_log").glob("*.json"):
            if path.stem.isdigit():
                info = _commit_info(path)
                if info is not None:
                    commits.append(_commit({**info, "version": int(path.stem)}))
        return sorted(commits, key=lambda c: c["version"], reverse=True)

    def files_added_after(self, after: int) -> tuple[int, set[str]] | None:
        """The table's version now and the names of the data files its commits after version `after`
        added (a streaming table's appended rows live in those); None if a commit in between is gone
        from the log (cleaned up) or a deletion vector changed a file in place."""
        log = self.location / "_delta_log"
        versions = self._commit_versions()
        latest = versions[-1] if versions else after
        if latest <= after:
            return latest, set()
        if versions[0] > after + 1:
            return None
        added: set[str] = set()
        for number in range(after + 1, latest + 1):
            for line in (log / f"{number:020d}.json").read_text(encoding="utf-8").splitlines():
                action = json.loads(line)
                if "add" in action and action["add"].get("dataChange", True):
                    if action["add"].get("deletionVector"):
                        return None
                    added.add(unquote(action["add"]["path"]).rsplit("/", 1)[-1])
        return latest, added

    def latest_version(self) -> int | None:
        versions = self._commit_versions()
        return versions[-1] if versions else None

    def _commit_versions(self) -> list[int]:
        return commit_versions(self.location / "_delta_log")

    def interrupted_refresh(self) -> int | None:
        """The version to restore when the newest commits are a materialized-view refresh's TRUNCATE
        without the WRITE that follows it (SDP refreshes as TRUNCATE, SET TBLPROPERTIES, WRITE: a
        process killed in between leaves the table empty); None when the table is whole."""
        commits = self.history()
        for commit in commits:
            if commit["operation"] == "SET TBLPROPERTIES":
                continue
            if commit["operation"] != "TRUNCATE":
                return None
            older = [c["version"] for c in commits if c["version"] < commit["version"]]
            return max(older) if older else None
        return None

    def version_at(self, travel: TimeTravel) -> int | None:
        """The version `travel` names (None: the current one): N itself, or the newest committed at or
        before `as_of` (as Delta's TIMESTAMP AS OF); UnknownVersion if there is none."""
        if travel.current:
            return None
        commits = self.history()
        versions = sorted(c["version"] for c in commits)
        if travel.version is not None:
            if travel.version not in versions:
                raise UnknownVersion(f"{self.location.name} has no version {travel.version}", versions)
            return travel.version
        assert travel.as_of is not None
        before = [c["version"] for c in commits if c["millis"] is not None
                  and c["millis"] <= travel.as_of.timestamp() * 1000]
        if not before:
            raise UnknownVersion(f"{self.location.name} did not exist yet at {travel.as_of:%Y-%m-%d %H:%M:%S} "
                                 f"UTC", versions)
        return max(before)

    def columns(self) -> dict[str, str] | None:
        """Each column's type as Spark prints it, from the Delta log's schema; None where it cannot be
        read without Spark (not Delta, or a type delta-rs cannot parse)."""
        if not self.is_delta:
            return None
        from deltalake.exceptions import DeltaError

        from pipelines.core.contracts import spark_type

        try:
            fields = json.loads(self._delta(None).schema().to_json())["fields"]
        except (DeltaError, ValueError, KeyError):
            return None
        return {f["name"]: spark_type(f["type"]) for f in fields}

    def _delta(self, version: int | None) -> Any:
        """The DeltaTable at `version` (None: the newest), already checked by `version_at`."""
        from deltalake import DeltaTable

        return DeltaTable(str(self.location), version=version)


def stored_table(catalog: Path, schema: str, name: str) -> StoredTable | None:
    """The managed table `schema.name` in a local catalog folder, if it is there."""
    folder = catalog / "warehouse"  # Hive keeps the `default` database in the warehouse root
    location = (folder if schema.lower() == "default" else folder / f"{schema.lower()}.db") / name.lower()
    return StoredTable(location) if location.is_dir() else None


def stored_tables(catalog: Path, schema: str) -> dict[str, StoredTable]:
    """Every managed table of `schema` in a local catalog folder, by name."""
    folder = catalog / "warehouse"
    folder = folder if schema.lower() == "default" else folder / f"{schema.lower()}.db"
    found = sorted(folder.iterdir()) if folder.is_dir() else []
    return {p.name: StoredTable(p) for p in found if p.is_dir() and not p.name.startswith((".", "_"))}


def _commit_info(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as log:
            for line in log:
                action = json.loads(line)
                if "commitInfo" in action:
                    return action["commitInfo"]
    except (OSError, ValueError):
        return None
    return None


def _commit(entry: dict[str, Any]) -> dict[str, Any]:
    metrics = entry.get("operationMetrics") or {}
    rows = metrics.get("numOutputRows", metrics.get("num_added_rows"))
    millis = entry.get("inCommitTimestamp") or entry.get("timestamp")
    return {
        "version": entry["version"],
        "timestamp": datetime.fromtimestamp(millis / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        if millis else None,
        "millis": millis,
        "run_id": entry.get("userMetadata"),
        "operation": entry.get("operation"),
        "rows": int(rows) if rows is not None else None,
        "query_id": (entry.get("operationParameters") or {}).get("queryId"),  # a streaming write's query
    }


def commit_versions(log: Path) -> list[int]:
    """The versions of the JSON commits still in a Delta log folder, oldest first."""
    return sorted(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())


def _replayed(location: Path, version: int | None) -> "tuple[ds.Dataset, list[str]] | None":
    """The table's files at `version` (None: the newest) from its log, as Delta replays it: the
    newest checkpoint at or before it, then each commit's add and remove actions. Only for plain
    tables (no deletion vectors, no column mapping, a single-file checkpoint); else None (Spark)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    log = location / "_delta_log"
    commits = commit_versions(log)
    last = commits[-1] if version is None and commits else version
    files: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] | None = None
    start = 0
    checkpoints = [int(p.name.split(".")[0]) for p in log.glob("*.checkpoint.parquet")]
    usable = [c for c in checkpoints if last is not None and c <= last]
    if usable:
        start = max(usable)
        actions = pq.read_table(log / f"{start:020d}.checkpoint.parquet", columns=["add", "metaData"])
        files = {add["path"]: add for add in actions.column("add").to_pylist() if add}
        meta = next((m for m in actions.column("metaData").to_pylist() if m), None)
        start += 1
    if last is None or (not usable and (not commits or commits[0] != 0)):
        return None  # the commits it would need were cleaned up
    for number in range(start, last + 1):
        for line in (log / f"{number:020d}.json").read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
            elif "metaData" in action:
                meta = action["metaData"]
    configuration = (meta or {}).get("configuration") or {}
    if meta is None or not files or any(add.get("deletionVector") for add in files.values()) \
            or configuration.get("delta.columnMapping.mode", "none") != "none":
        return None
    paths = [str(location / unquote(path)) for path in files]
    data = ds.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=str(location))
    return data, [field["name"] for field in json.loads(meta["schemaString"])["fields"]]


def _parquet_files(location: Path) -> "tuple[ds.Dataset, list[str]] | None":
    """A managed parquet table: every visible file (Spark skips names starting with `_` or `.`)."""
    import pyarrow.dataset as ds

    files = sorted(p for p in location.rglob("*") if p.is_file() and not any(
        part.startswith(("_", ".")) and "=" not in part for part in p.relative_to(location).parts))
    if not files or any(not f.name.endswith(".parquet") for f in files):
        return None  # no file to take the schema from, or another format
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us"))
    data = ds.dataset([str(f) for f in files], format=fmt, partitioning="hive",
                      partition_base_dir=str(location))
    return data, list(data.schema.names)
