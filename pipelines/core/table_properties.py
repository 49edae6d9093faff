"""Delta table properties known to Delta Lake 4.4 (`DeltaConfigs.scala`), so that a misspelt
`delta.*` key in config.yml is a config error before Spark starts: Delta rejects an unknown one only
at the write, after the table's computation ran."""
from __future__ import annotations

import difflib

from typing import Union

Scalar = Union[str, int, float, bool]

BOOLEAN = frozenset({
    "delta.appendOnly", "delta.autoOptimize.autoCompact", "delta.autoOptimize.optimizeWrite",
    "delta.checkpoint.writeStatsAsJson", "delta.checkpoint.writeStatsAsStruct",
    "delta.compatibility.symlinkFormatManifest.enabled", "delta.enableChangeDataFeed",
    "delta.enableDeletionVectors", "delta.enableIcebergCompatV1", "delta.enableIcebergCompatV2",
    "delta.enableInCommitTimestamps", "delta.enableRowTracking", "delta.enableTypeWidening",
    "delta.randomizeFilePrefixes", "delta.tuneFileSizesForRewrites", "delta.enableExpiredLogCleanup",
})
OTHER = frozenset({
    "delta.checkpointInterval", "delta.checkpointPolicy", "delta.columnMapping.mode",
    "delta.dataSkippingNumIndexedCols", "delta.dataSkippingStatsColumns",
    "delta.deletedFileRetentionDuration", "delta.isolationLevel", "delta.logRetentionDuration",
    "delta.minReaderVersion", "delta.minWriterVersion", "delta.randomPrefixLength",
    "delta.setTransactionRetentionDuration", "delta.targetFileSize", "delta.parquet.compression.codec",
    "delta.universalFormat.enabledFormats", "delta.sampleRetentionDuration",
})
KNOWN = BOOLEAN | OTHER
FEATURE_PREFIX = "delta.feature."  # delta.feature.<name> = supported


def property_problem(key: str, value: Scalar) -> str | None:
    """Why Delta would refuse `key: value` as a table property, None if it would take it. Keys
    outside `delta.` are the user's own (Delta stores them as they are)."""
    if not key.startswith("delta.") or key in OTHER:
        return None
    if key.startswith(FEATURE_PREFIX):
        return None if str(value).lower() in ("supported", "enabled") else \
            f"table property {key!r} takes 'supported' (got {value!r})"
    if key in BOOLEAN:
        return None if str(value).lower() in ("true", "false") else \
            f"table property {key!r} takes true or false (got {value!r})"
    close = difflib.get_close_matches(key, sorted(KNOWN), n=1)
    return f"unknown Delta table property {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def property_value(value: Scalar) -> str:
    """A config.yml value as a table property's text: booleans as Delta spells them (`true`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
