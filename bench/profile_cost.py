"""What does a full local profile cost next to `DataFrame.summary()` and a plain `count()`?

1M rows x 20 columns (15 numeric, 5 strings) by default, generated and written to parquet first, then
read back for each measurement, all in one process on one local session: the profile
(`pipelines.monitors.profile`: one fused aggregation + one melt/group-by, more metrics than summary:
nulls, zeros, NaN, lengths, quantiles, distinct counts, frequent items), `summary()` (count, mean,
stddev, min, quartiles, max), and `count()`. Repeated; min and median reported.

`ratio` = profile seconds / summary seconds (goal <= 0.3); `scan_jobs` = input scans by the profile
(counted with an accumulator-ticking UDF in tests/spark/test_profile.py: 2). Last stdout line: JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.monitors.profile import profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    strings = max(1, args.columns // 4)
    numeric = args.columns - strings
    with tempfile.TemporaryDirectory() as tmp:
        spark = local_session(Path(tmp) / "state", app_name="profile_cost", master="local[2]")
        data = Path(tmp) / "data"
        spark.range(args.rows).selectExpr(
            *[f"CASE WHEN id % {i + 7} = 0 THEN NULL ELSE (id * {i + 1}) % {1000 + i} / 10.0 END AS n{i}"
              for i in range(numeric)],
            *[f"CONCAT('v', CAST((id * {i + 3}) % {20 + i} AS STRING)) AS s{i}" for i in range(strings)],
        ).write.parquet(str(data))
        window = (datetime(2026, 11, 23), datetime(2026, 11, 24))

        def read():
            return spark.read.parquet(str(data))

        variants = {
            "profile": lambda: profile(spark, read(), window).collect(),
            "summary": lambda: read().summary().collect(),
            "count": lambda: read().count(),
        }
        for action in variants.values():  # warm up
            action()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, action in variants.items():  # interleaved: the machine's noise hits all alike
                started = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - started)
        spark.stop()
    for name, values in times.items():
        print(f"{name:>8}: min {min(values):.2f} s, median {statistics.median(values):.2f} s")
    print(json.dumps({
        "bench": "profile_cost", "rows": args.rows, "columns": args.columns,
        "seconds": round(min(times["profile"]), 3), "seconds_median": round(statistics.median(times["profile"]), 3),
        "summary_seconds": round(min(times["summary"]), 3), "count_seconds": round(min(times["count"]), 3),
        "ratio": round(min(times["profile"]) / min(times["summary"]), 3), "scan_jobs": 2,
        "target": "ratio <= 0.3", "met": min(times["profile"]) / min(times["summary"]) <= 0.3,
    }))


if __name__ == "__main__":
    main()
