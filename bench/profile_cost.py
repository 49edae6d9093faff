"""What does a full local profile cost next to `DataFrame.summary()` and a plain `count()`?

1M rows x 20 columns (15 numeric, 5 strings) by default, generated and written to parquet first, then
read back for each measurement, all in one process on one local session: the profile
(`pipelines.monitors.profile`: one fused aggregation + one melt/group-by, more metrics than summary:
nulls, zeros, NaN, lengths, quantiles, distinct counts, frequent items), `summary()` (count, mean,
stddev, min, quartiles, max), and `count()`. Repeated; min and median reported.

`ratio` = profile seconds / summary seconds (goal <= 0.3). `drift_seconds`: consecutive drift of
the new profile against a stored one (`pipelines.monitors.drift`, no scan). `scan_jobs`: scans of
the input by one profile, measured on a 20,000-row copy whose every row ticks an accumulator when
read (scans = ticks / rows; as in tests/spark/test_profile.py). Last stdout line: JSON.
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
from pipelines.monitors.drift import consecutive  # noqa: E402
from pipelines.monitors.profile import profile, profile_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--driver-memory", default="4g", help="summary() of 100 columns needs more than 1g")
    args = parser.parse_args()
    strings = max(1, args.columns // 4)
    numeric = args.columns - strings
    with tempfile.TemporaryDirectory() as tmp:
        spark = local_session(Path(tmp) / "state", app_name="profile_cost", master="local[2]",
                              extra_conf={"spark.driver.memory": args.driver_memory})
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
        earlier = [{**row, "window": {"start": datetime(2026, 11, 22), "end": datetime(2026, 11, 22)}}
                   for row in profile_rows(read(), window)]
        now = profile_rows(read(), window)
        drift_times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            drift = consecutive(now, earlier)
            drift_times.append(time.perf_counter() - started)
        assert len(drift) == len(now)
        scans = scans_of_one_profile(spark, args.columns)
        spark.stop()
    times["drift"] = drift_times
    for name, values in times.items():
        print(f"{name:>8}: min {min(values):.2f} s, median {statistics.median(values):.2f} s")
    print(json.dumps({
        "bench": "profile_cost", "rows": args.rows, "columns": args.columns,
        "seconds": round(min(times["profile"]), 3), "seconds_median": round(statistics.median(times["profile"]), 3),
        "summary_seconds": round(min(times["summary"]), 3), "count_seconds": round(min(times["count"]), 3),
        "drift_seconds": round(min(drift_times), 4),
        "ratio": round(min(times["profile"]) / min(times["summary"]), 3), "scan_jobs": scans,
        "target": "ratio <= 0.3 and scan_jobs <= 2",
        "met": min(times["profile"]) / min(times["summary"]) <= 0.3 and scans <= 2,
    }))


def scans_of_one_profile(spark, columns: int, rows: int = 20_000) -> int:
    """How many times one profile reads its input: every row read ticks an accumulator (a classic
    session's SparkContext API, used only here, in the benchmark)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    calls = spark.sparkContext.accumulator(0)

    def tick(value):
        calls.add(1)
        return value

    ticked = spark.range(rows).withColumn("t", F.udf(tick, LongType())("id"))
    strings = max(1, columns // 4)
    df = ticked.selectExpr(*[f"(t * {i}) % 97 AS n{i}" for i in range(columns - strings)],
                           *[f"CAST(t % {i + 3} AS STRING) AS s{i}" for i in range(strings)])
    profile(spark, df, (datetime(2026, 11, 23), datetime(2026, 11, 23))).collect()
    return calls.value // rows


if __name__ == "__main__":
    main()
