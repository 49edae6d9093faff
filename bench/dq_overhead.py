"""What do 5 DQX checks cost when a table is materialized with its quarantine?

Side by side in one process, on the same input (N rows of parquet, ~2% failing rows), min of
`--repeats` interleaved runs each:
  unchecked  the table written by the engine without checks (baseline)
  checked    the engine with 5 checks, on_error: quarantine (table + quarantine, one pass)
  anchor     DQX's plain path: apply_checks_by_metadata_and_split, then write valid and invalid
ratio = checked / unchecked; anchor_ratio = anchor / unchecked. Goal: ratio <= 1.5 and < anchor_ratio.
Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import functions as F  # noqa: E402

from pipelines.core.config import PipelineSettings, TableConfig  # noqa: E402
from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.catalog.storage import TableStore  # noqa: E402
from pipelines.quality.enforce import Expectations  # noqa: E402
from pipelines.quality.materialize import Materializer  # noqa: E402

CHECKS = [
    {"name": "id_not_null", "criticality": "error", "check": {"function": "is_not_null", "arguments": {"column": "id"}}},
    {"name": "email_not_null", "criticality": "error",
     "check": {"function": "is_not_null", "arguments": {"column": "email"}}},
    {"name": "amount_not_negative", "criticality": "error",
     "check": {"function": "sql_expression", "arguments": {"expression": "amount >= 0"}}},
    {"name": "email_valid", "criticality": "warn",
     "check": {"function": "regex_match", "arguments": {"column": "email", "regex": "^[^@]+@[^@]+\\.[a-z]+$"}}},
    {"name": "country_known", "criticality": "warn",
     "check": {"function": "is_in_list", "arguments": {"column": "country", "allowed": ["'GB'", "'US'", "'NL'"]}}},
]


def make_input(spark, rows: int, path: Path) -> None:
    df = spark.range(rows).select(
        F.when(F.col("id") % 97 == 0, None).otherwise(F.col("id")).alias("id"),
        F.when(F.col("id") % 89 == 0, None)
        .when(F.col("id") % 103 == 0, F.concat(F.lit("user"), F.col("id"), F.lit("@example")))
        .otherwise(F.concat(F.lit("user"), F.col("id"), F.lit("@example.com"))).alias("email"),
        ((F.col("id") % 1000) - F.when(F.col("id") % 83 == 0, 2000).otherwise(0)).cast("double").alias("amount"),
        F.when(F.col("id") % 101 == 0, "XX").otherwise(
            F.element_at(F.array(F.lit("GB"), F.lit("US"), F.lit("NL")), (F.col("id") % 3 + 1).cast("int")))
        .alias("country"),
        F.timestamp_seconds(F.col("id") + 1_700_000_000).alias("ts"))
    df.write.mode("overwrite").parquet(str(path))


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dq_overhead_"))
    try:
        spark = local_session(tmp / "state", app_name="dq_overhead", master="local[2]")
        make_input(spark, args.rows, tmp / "input")
        settings = PipelineSettings(schema="bench")
        store = TableStore(spark, settings, tmp / "state")
        store.ensure_schema()
        table = TableConfig(name="orders", layer="silver", expectations=tuple(CHECKS))
        plain = table.model_copy(update={"name": "orders_unchecked", "expectations": ()})
        from pipelines.core.config import Config
        expectations = Expectations(spark, Config(tables=(table,), path=tmp / "config.yml"))
        engine = expectations.engine
        materializer = Materializer(store, expectations)

        def source():
            return spark.read.parquet(str(tmp / "input"))

        def unchecked() -> None:
            store.write_table(plain, source())

        results: dict[str, object] = {}

        def checked() -> None:
            stats = materializer.materialize(table, source())
            results["checked"] = (stats.rows_written, stats.quality.rows_quarantined)

        def anchor() -> None:
            valid, invalid = engine.apply_checks_by_metadata_and_split(source(), CHECKS)
            valid.write.mode("overwrite").parquet(str(tmp / "anchor_valid"))
            invalid.write.mode("overwrite").parquet(str(tmp / "anchor_invalid"))
            results["anchor"] = None

        variants = {"unchecked": unchecked, "checked": checked, "anchor": anchor}
        for action in variants.values():  # warm up JIT, file caches and DQX imports
            action()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, action in variants.items():
                times[name].append(timed(action))
        best = {name: min(values) for name, values in times.items()}
        rows_written, quarantined = results["checked"]  # type: ignore[misc]
        assert rows_written + quarantined == args.rows, "rows lost or duplicated"
        for name, seconds in best.items():
            print(f"{name:>9}: {seconds:.2f}s (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
        ratio = best["checked"] / best["unchecked"]
        anchor_ratio = best["anchor"] / best["unchecked"]
        print(json.dumps({
            "bench": "dq_overhead", "rows": args.rows, "checks": len(CHECKS),
            "ratio": round(ratio, 2), "anchor_ratio": round(anchor_ratio, 2),
            "seconds": {k: round(v, 3) for k, v in best.items()},
            "rows_written": rows_written, "rows_quarantined": quarantined,
            "goal": "ratio <= 1.5 and ratio < anchor_ratio", "ok": ratio <= 1.5 and ratio < anchor_ratio}))
        spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
