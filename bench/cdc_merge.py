"""What does the engine's AUTO CDC cost against a hand-written Delta MERGE of the same change events?

A type-2 target of K keys (`--keys`; stored events and target built once, untimed), then one batch of
`--events` change events (default K): 65% inserts of new keys, 20% updates, 5% deletes, 10% late
updates (a sequence lower than the stored one). Side by side in one process, each variant restored to the same starting state before each
run (untimed), min and median of `--repeats` interleaved runs:
  engine    the Spark runner's write path for a `cdc:` table (`Materializer.materialize` of a `CdcTarget`):
            new events checked, the keys they touch recomputed from their stored and new events and
            merged into the target (one MERGE), then the events stored
  merge     the usual hand-written SCD2: one MERGE closing the current version of every key the batch
            touches, one INSERT of the new versions; no ordering fixes, so late events land wrong
ratio = engine / merge. Goal (issue 22): ratio <= 1.5. Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import functions as F  # noqa: E402

from pipelines.catalog.cdc import apply_changes  # noqa: E402
from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.catalog.storage import CDC_EVENTS_SUFFIX, TableStore  # noqa: E402
from pipelines.core.cdc import CdcSpec  # noqa: E402
from pipelines.core.config import Config, PipelineSettings, TableConfig  # noqa: E402
from pipelines.core.outputs import CdcTarget  # noqa: E402
from pipelines.quality.enforce import Expectations  # noqa: E402
from pipelines.quality.materialize import Materializer  # noqa: E402

SPEC = CdcSpec(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op", "seq"],
               stored_as_scd_type=2)


def initial_events(spark, keys: int):
    return spark.range(keys).select("id", F.lit("I").alias("op"), F.lit(10).alias("seq"),
                                    F.concat(F.lit("name-"), F.col("id")).alias("name"),
                                    (F.col("id") % 100).alias("score"))


def change_batch(spark, keys: int, events: int):
    """`events` events, one per key: 35% touch stored keys (updates, deletes, late updates), the rest
    are new keys."""
    i = F.col("id") % 100
    kind = (F.when(i < 20, "U").when(i < 25, "D").when(i < 35, "L").otherwise("I"))
    touched = F.floor(F.col("id") / 100) * 35 + F.col("id") % 100  # distinct stored keys for U/D/L
    new_key = F.lit(keys) + F.col("id")
    return spark.range(events).select(
        F.when(kind == "I", new_key).otherwise(touched).alias("id"),
        F.when(kind == "D", "D").otherwise("U").alias("op"),
        F.when(kind == "L", 5).otherwise(20).alias("seq"),
        F.concat(F.lit("changed-"), F.col("id")).alias("name"),
        (F.col("id") % 100 + 1).alias("score"))


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=None, help="events in the batch (default: --keys)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    events = args.events or args.keys
    tmp = Path(tempfile.mkdtemp(prefix="cdc_merge_"))
    try:
        spark = local_session(tmp / "state", app_name="cdc_merge", master="local[2]")
        settings = PipelineSettings(schema="bench")
        store = TableStore(spark, settings, tmp / "state")
        store.ensure_schema()
        table = TableConfig(name="history", layer="silver", depends_on=("changes",), cdc=SPEC)
        batch_path, events_path = str(tmp / "batch"), str(tmp / "initial_events")
        change_batch(spark, args.keys, events).write.parquet(batch_path)
        initial_events(spark, args.keys).write.parquet(events_path)
        start = apply_changes(spark.read.parquet(events_path), SPEC)
        start.write.format("delta").save(str(tmp / "start_target"))

        materializer = Materializer(store, Expectations(spark, Config(pipeline=settings, tables=(table,))))

        def write(path: str) -> dict[str, int]:
            return dict(materializer.materialize(table, spark.read.parquet(path), output=CdcTarget()).changes or {})

        def reset_engine() -> None:
            spark.sql(f"DROP TABLE IF EXISTS {store.fqn(table.name + CDC_EVENTS_SUFFIX)}")
            spark.sql(f"DROP TABLE IF EXISTS {store.fqn(table.name)}")
            write(events_path)

        counted: dict[str, int] = {}

        def engine() -> None:
            counted.update(write(batch_path))

        def reset_merge() -> None:
            spark.sql(f"CREATE OR REPLACE TABLE bench.merged USING delta AS "
                      f"SELECT * FROM delta.`{tmp / 'start_target'}`")

        def merge() -> None:
            spark.read.parquet(batch_path).createOrReplaceTempView("batch")
            spark.sql("MERGE INTO bench.merged t USING batch e ON t.id = e.id AND t.__END_AT IS NULL "
                      "WHEN MATCHED THEN UPDATE SET t.__END_AT = e.seq")
            spark.sql("INSERT INTO bench.merged SELECT id, name, score, seq AS __START_AT, "
                      "CAST(NULL AS INT) AS __END_AT FROM batch WHERE op <> 'D'")

        variants = {"engine": (reset_engine, engine), "merge": (reset_merge, merge)}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, (reset, action) in variants.items():
                reset()
                times[name].append(timed(action))
        stored = spark.table(store.fqn(table.name))
        rows = stored.count()
        for name, values in times.items():
            print(f"{name:>7}: min {min(values):.1f}s median {statistics.median(values):.1f}s "
                  f"(runs: {', '.join(f'{t:.1f}' for t in values)})")
        best = {name: min(values) for name, values in times.items()}
        ratio = best["engine"] / best["merge"]
        print(json.dumps({
            "bench": "cdc_merge", "keys": args.keys, "events": events, "ratio": round(ratio, 2),
            "median_ratio": round(statistics.median(times["engine"]) / statistics.median(times["merge"]), 2),
            "seconds": {k: round(v, 2) for k, v in best.items()}, "changes": counted, "target_rows": rows,
            "goal": "ratio <= 1.5", "ok": ratio <= 1.5}))
        spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
