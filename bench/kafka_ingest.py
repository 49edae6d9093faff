"""What does the engine cost to land Kafka JSON events in a bronze table, against a hand-written stream?

A real single-node broker on 127.0.0.1 (`pipelines.engine.kafka_broker.KafkaBroker`), one topic with two
partitions holding `--events` JSON events (written once, untimed, by Spark's Kafka writer). Side by side
in one process, each variant starting from an empty table and checkpoint (reset untimed), min and median
of `--repeats` interleaved runs, each reading the whole topic once (`availableNow`):
  engine    `ldp_engine --mode streaming` on a one-table project (`source: {type: kafka, value_format:
            json, value_schema: ...}`) through the Spark runner: decoded into columns plus `_kafka`, and
            the implicit `malformed_record` check splitting valid rows from quarantine
  hand      `spark.readStream.format("kafka")` -> `from_json` -> the same columns plus `_kafka` ->
            `writeStream.format("delta").trigger(availableNow=True).toTable(...)`: no check, no quarantine
ratio = engine / hand. Goal (issue 23): ratio <= 1.15. Last stdout line: one JSON object.
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

from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.catalog.storage import TableStore  # noqa: E402
from pipelines.core.kafka_source import KafkaSource  # noqa: E402
from pipelines.engine.project import load_project  # noqa: E402
from pipelines.runners.spark import SparkRunner  # noqa: E402
from pipelines.engine.kafka_broker import KafkaBroker  # noqa: E402

TOPIC = "order_events"
SCHEMA = "order_id STRING, customer_id STRING, amount DOUBLE, status STRING, ts TIMESTAMP"
CONFIG = """
pipeline: {{schema: bench, transformations: ./transformations}}
tables:
  - name: order_events
    layer: bronze
    source: {{type: kafka, bootstrap_servers: '{servers}', topic: {topic}, value_format: json,
             value_schema: '{schema}'}}
"""


def produce(spark, servers: str, events: int) -> None:
    rows = spark.range(events, numPartitions=2).select(
        F.concat(F.lit("o"), F.col("id")).alias("key"),
        F.to_json(F.struct(F.concat(F.lit("o"), F.col("id")).alias("order_id"),
                           F.concat(F.lit("c"), F.col("id") % 1000).alias("customer_id"),
                           (F.col("id") % 997 / 10).alias("amount"),
                           F.when(F.col("id") % 3 == 0, "shipped").otherwise("new").alias("status"),
                           F.timestamp_seconds(F.lit(1_790_000_000) + F.col("id")).alias("ts"))).alias("value"))
    rows.write.format("kafka").option("kafka.bootstrap.servers", servers).option("topic", TOPIC).save()


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kafka_ingest_"))
    source = KafkaSource(type="kafka", bootstrap_servers="unused:1", topic=TOPIC)
    try:
        with KafkaBroker(tmp / "broker", partitions=2) as broker:
            spark = local_session(tmp / "state", app_name="kafka_ingest", master="local[2]",
                                  packages=source.local_packages)
            produce(spark, broker.bootstrap_servers, args.events)
            project_dir = tmp / "project"
            (project_dir / "transformations" / "bronze").mkdir(parents=True)
            (project_dir / "transformations" / "bronze" / "order_events.py").write_text(
                "def order_events(source):\n    return source\n")
            (project_dir / "config.yml").write_text(CONFIG.format(servers=broker.bootstrap_servers, topic=TOPIC,
                                                                  schema=SCHEMA))
            project = load_project(project_dir / "config.yml", mode="streaming")
            state = tmp / "engine_state"
            outcome: dict[str, int] = {}

            def reset_engine() -> None:
                spark.sql("DROP TABLE IF EXISTS bench.order_events")
                spark.sql("DROP TABLE IF EXISTS bench.order_events_quarantine")
                shutil.rmtree(state, ignore_errors=True)

            def engine() -> None:
                store = TableStore(spark, project.plan.pipeline, state)
                [table] = SparkRunner(spark, project.plan, project.functions, store).run().tables
                assert table.status == "success", table.error
                outcome["engine_rows"] = int(table.rows_written or 0)

            def reset_hand() -> None:
                spark.sql("DROP TABLE IF EXISTS bench.hand")
                shutil.rmtree(tmp / "hand_checkpoint", ignore_errors=True)

            def hand() -> None:
                events = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", broker.bootstrap_servers)
                          .option("subscribe", TOPIC).option("startingOffsets", "earliest").load())
                origin = F.struct(F.col("key").cast("string").alias("key"), "topic", "partition", "offset",
                                  "timestamp").alias("_kafka")
                decoded = events.select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("v"), origin)
                (decoded.select("v.*", "_kafka").writeStream.format("delta").trigger(availableNow=True)
                 .option("checkpointLocation", str(tmp / "hand_checkpoint")).toTable("bench.hand")
                 .awaitTermination())
                outcome["hand_rows"] = spark.table("bench.hand").count()

            spark.sql("CREATE SCHEMA IF NOT EXISTS bench")
            variants = {"engine": (reset_engine, engine), "hand": (reset_hand, hand)}
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.repeats):
                for name, (reset, action) in variants.items():
                    reset()
                    times[name].append(timed(action))
            for name, values in times.items():
                print(f"{name:>7}: min {min(values):.1f}s median {statistics.median(values):.1f}s "
                      f"(runs: {', '.join(f'{t:.1f}' for t in values)})")
            best = {name: min(values) for name, values in times.items()}
            ratio = best["engine"] / best["hand"]
            print(json.dumps({
                "bench": "kafka_ingest", "events": args.events, "ratio": round(ratio, 2),
                "median_ratio": round(statistics.median(times["engine"]) / statistics.median(times["hand"]), 2),
                "seconds": {k: round(v, 2) for k, v in best.items()}, **outcome,
                "goal": "ratio <= 1.15", "ok": ratio <= 1.15}))
            spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
