"""How fast does a table reach PostgreSQL through the engine's `replace` sink?

1M rows x 6 columns (bigint, text, double, int, timestamp, boolean) in a parquet table, one local
session (local[2]) and one embedded PostgreSQL 18 (unix socket), in one process, side by side:
- `sink`: `pipelines.lakebase.sink.write(..., mode="replace")` from the Spark table (streamed
  partitions, binary COPY, one transaction);
- `copy`: raw psycopg binary COPY of the same rows from Python tuples built outside the timer
  (TRUNCATE + COPY in one transaction: the floor for any Python writer);
- `executemany`: psycopg `executemany` INSERT of the same tuples (the usual hand-written job; once,
  it is slow).

`ratio` = sink / copy (goal <= 1.5, issue 26); `vs_executemany` = executemany / sink (goal >= 8). Repeats
interleaved; min and median reported. Last stdout line: JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.core.lakebase import LakebaseSettings  # noqa: E402
from pipelines.lakebase.connection import Lakebase  # noqa: E402
from pipelines.lakebase.sink import write  # noqa: E402

COLUMNS = "id bigint, name text, score double precision, qty integer, at timestamptz, flag boolean"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--executemany-rows", type=int, default=None,
                        help="measure executemany on this many rows and scale (default: all rows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spark = local_session(Path(tmp) / "state", app_name="sink_throughput", master="local[2]")
        data = Path(tmp) / "data"
        spark.range(args.rows).selectExpr(
            "id", "CONCAT('name-', CAST(id AS STRING)) AS name", "CAST(id * 0.5 AS DOUBLE) AS score", "CAST(id % 1000 AS INT) AS qty",
            "TIMESTAMP'2026-11-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 86400) AS at",
            "id % 2 = 0 AS flag").write.parquet(str(data))
        df = spark.read.parquet(str(data))
        with Lakebase(LakebaseSettings(), Path(tmp) / "state") as lakebase:
            with lakebase.connect() as conn:
                conn.execute("CREATE SCHEMA bench")
                conn.execute(f"CREATE TABLE bench.raw ({COLUMNS})")
            tuples = [tuple(row) for row in df.collect()]  # outside every timer
            tuples = [(i, n, s, q, a.astimezone(), f) for i, n, s, q, a, f in tuples]

            def sink() -> None:
                assert write(lakebase.connect, df, "bench", "sinked", "replace") == args.rows

            def copy() -> None:
                with lakebase.connect() as conn, conn.cursor() as cursor:
                    cursor.execute("TRUNCATE bench.raw")
                    with cursor.copy("COPY bench.raw FROM STDIN (FORMAT BINARY)") as writer:
                        writer.set_types(["bigint", "text", "float8", "int4", "timestamptz", "bool"])
                        for row in tuples:
                            writer.write_row(row)

            def executemany(rows: list[tuple]) -> float:
                started = time.perf_counter()
                with lakebase.connect() as conn, conn.cursor() as cursor:
                    cursor.execute("TRUNCATE bench.raw")
                    cursor.executemany("INSERT INTO bench.raw VALUES (%s, %s, %s, %s, %s, %s)", rows)
                return time.perf_counter() - started

            sink()
            copy()  # warm-up
            times: dict[str, list[float]] = {"sink": [], "copy": []}
            for _ in range(args.repeat):
                for name, action in (("sink", sink), ("copy", copy)):
                    started = time.perf_counter()
                    action()
                    times[name].append(time.perf_counter() - started)
            subset = tuples[: args.executemany_rows or args.rows]
            many = executemany(subset) * args.rows / len(subset)
        spark.stop()
    for name, values in times.items():
        print(f"{name:>12}: min {min(values):.2f} s, median {statistics.median(values):.2f} s")
    print(f"{'executemany':>12}: {many:.2f} s" + (" (scaled)" if len(subset) < args.rows else ""))
    sink_s, copy_s = min(times["sink"]), min(times["copy"])
    print(json.dumps({
        "bench": "sink_throughput", "rows": args.rows, "seconds": round(sink_s, 3),
        "seconds_median": round(statistics.median(times["sink"]), 3), "copy_seconds": round(copy_s, 3),
        "executemany_seconds": round(many, 3), "ratio": round(sink_s / copy_s, 3),
        "vs_executemany": round(many / sink_s, 2), "target": "ratio <= 1.5 and vs_executemany >= 8",
        "met": sink_s / copy_s <= 1.5 and many / sink_s >= 8,
    }))


if __name__ == "__main__":
    main()
