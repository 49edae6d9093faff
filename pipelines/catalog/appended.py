"""The rows added to a streaming table after a given version, for the sinks that take only new rows (as
a Lakeflow sink's append flow does). A streaming table only gains files: the rows are those of the
data files its commits after that version added, named in its Delta log and picked by Spark's
`_metadata.file_name`. Where the log is not a local folder, or no longer holds those commits, the
whole table is handed, with a warning.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.catalog.reader import StoredTable

log = logging.getLogger(__name__)


def local_location(spark: SparkSession, fqn: str) -> Path | None:
    """The table's folder, if it is a local table (a `file:` location)."""
    try:
        location = urlparse(str(spark.sql(f"DESCRIBE DETAIL {fqn}").first()["location"]))
    except AnalysisException:  # not a Delta table: no versions to follow
        return None
    return Path(unquote(location.path)) if location.scheme in ("", "file") else None


def rows_after(stored: StoredTable | None, after: int | None,
               read_whole: Callable[[], DataFrame]) -> tuple[DataFrame, int | None]:
    """The rows the table `stored` gained after version `after` (None: all of it), and its version now
    (None where its log cannot be followed). A rebuild's overwrite adds every file it wrote, so a
    rebuilt table is handed whole."""
    whole = read_whole()
    if stored is None or not stored.is_delta:
        return whole, None
    found = None if after is None else stored.files_added_after(after)
    if found is None:
        if after is not None:
            log.warning("%s: the commits since version %s are gone from the Delta log; its sinks get the "
                        "whole table this run", stored.location.name, after)
        return whole, stored.latest_version()
    latest, files = found
    return whole.where(F.col("_metadata.file_name").isin(sorted(files))) if files else whole.limit(0), latest


def local_table(spark: SparkSession, fqn: str) -> StoredTable | None:
    location = local_location(spark, fqn)
    return StoredTable(location) if location is not None else None
