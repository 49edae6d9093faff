"""Read a locally stored table from its parquet files, without a JVM (`ldp_engine show` in ~1 s
instead of a Spark start).

The catalog (a Derby metastore) is only readable from the JVM, so the table's current files are found
from the layout `storage.py` writes, and only where that layout answers unambiguously:

- `{catalog}/tables/{schema}/{name}/v-*|stream-*`: the Spark runner's versions. A rewrite leaves the
  current version and the one it replaced, so the newest complete one (`_SUCCESS`) is current.
  A version split in one write (`_ldp_quarantined=false|true`) holds the table and its quarantine.
- `{catalog}/warehouse/{schema}.db/{name}`: managed tables (the SDP runner's, written in place).
- a `_spark_metadata` log (streaming file sink): only the files it committed, as Spark reads them.

Anything else (Delta, other formats, three versions after a failed swap, an empty table whose schema
only the catalog knows) is `None`: the caller asks Spark. Nothing here imports pyspark.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pyarrow.dataset as ds

SPLIT_FLAG = "_ldp_quarantined"  # the column a checked write is split on (quality.materialize.QUARANTINE_FLAG)
_VERSION = re.compile(r"(v|stream)-\d{8}T\d{6}-[0-9a-f]{8}")
_LOG_ENTRY = re.compile(r"\d+(\.compact)?")
_MAX_VERSIONS = 2  # the current version and the one it replaced (storage._drop_other_versions)


@dataclass(frozen=True)
class StoredTable:
    """Where one table's current rows are, and the stored columns that are not the table's."""

    location: Path
    drop: tuple[str, ...] = ()

    def open(self) -> "tuple[ds.Dataset, list[str]] | None":
        """The table's files as one dataset (hive partitions as columns) and the table's columns in
        order; None if Spark must read it."""
        import pyarrow.dataset as ds

        files = _data_files(self.location)
        if not files or any(not f.name.endswith(".parquet") or not f.is_file() for f in files):
            return None  # no file to take the schema from, another format, or a log naming lost files
        fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us"))
        data = ds.dataset([str(f) for f in files], format=fmt, partitioning="hive",
                          partition_base_dir=str(self.location))
        return data, [name for name in data.schema.names if name not in self.drop]


def stored_table(catalog: Path, schema: str, name: str, main_drop: tuple[str, ...] = (),
                 quarantine_of: str | None = None) -> StoredTable | None:
    """The table `schema.name` in a local catalog folder, if its files tell where it is.

    `main_drop`: columns a checked table's half of a split write carries but the table does not
    (its `_errors`); `quarantine_of`: the checked table whose split write holds this quarantine table."""
    own = _current_version(catalog / "tables" / schema / name)
    if own is not None:
        half = own / f"{SPLIT_FLAG}=false"
        return StoredTable(half, main_drop) if half.is_dir() else StoredTable(own)
    if quarantine_of:
        parent = _current_version(catalog / "tables" / schema / quarantine_of)
        if parent is not None and (parent / f"{SPLIT_FLAG}=true").is_dir():
            return StoredTable(parent / f"{SPLIT_FLAG}=true")
    managed = catalog / "warehouse" / f"{schema}.db" / name
    if managed.is_dir() and not (managed / "_delta_log").exists():
        return StoredTable(managed)
    return None


def _current_version(root: Path) -> Path | None:
    """The newest complete version folder, when at most two are there (a third means a swap failed
    and only the catalog knows which one is current)."""
    if not root.is_dir():
        return None
    versions = [p for p in root.iterdir() if p.is_dir() and _VERSION.fullmatch(p.name)]
    if not versions or len(versions) > _MAX_VERSIONS:
        return None
    newest = max(versions, key=lambda p: (p.name.split("-")[1], p.stat().st_mtime_ns))
    streaming = newest.name.startswith("stream-")
    return newest if streaming or (newest / "_SUCCESS").exists() else None


def _data_files(location: Path) -> list[Path]:
    """The data files under `location`: those a streaming sink's log committed, else every visible
    file (Spark skips names starting with `_` or `.`, at any depth)."""
    log = location / "_spark_metadata"
    if log.is_dir():
        return _committed(log)
    return sorted(p for p in location.rglob("*") if p.is_file()
                  and not any(part.startswith(("_", ".")) and "=" not in part
                              for part in p.relative_to(location).parts))


def _committed(log: Path) -> list[Path]:
    """Files a file sink committed: the newest compacted batch plus the batches after it."""
    entries = sorted((int(p.name.split(".")[0]), p) for p in log.iterdir() if _LOG_ENTRY.fullmatch(p.name))
    compacted = max((batch for batch, p in entries if p.name.endswith(".compact")), default=-1)
    files: dict[str, Path] = {}
    for batch, path in entries:
        if batch < compacted or (batch == compacted and not path.name.endswith(".compact")):
            continue
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:  # the first line is the version
            entry = json.loads(line)
            if entry.get("action") == "delete":
                files.pop(entry["path"], None)
            elif not entry.get("isDir"):
                files[entry["path"]] = Path(unquote(urlparse(entry["path"]).path))
    return sorted(files.values())
