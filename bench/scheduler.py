"""How much does scheduling cost per table, and does it grow linearly?

Plans of 1,000 and 10,000 tables (the layered DAG of bench/plan_scale.py: 1-3 upstream tables each)
are run by the real scheduler (`pipelines.runners.schedule.run_plan`: thread pool, ready queue) with
no-op tables (no Spark, nothing stored), so what is timed is scheduling alone. Side by side, in the
same process, the previous scheduler's loop (rescan the whole plan after every finished table, linear
`Plan.table` lookups) is run on the same plans as the baseline.

`ratio` = time(10,000) / time(1,000) for the current scheduler (linear growth gives ~10).
Targets: 10,000 tables scheduled in < 1 s; ratio <= 12. Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_scale import generate  # noqa: E402

from pipelines.core.config import load_config  # noqa: E402
from pipelines.core.plan import Plan, TablePlan, build_plan  # noqa: E402
from pipelines.core.results import TableResult  # noqa: E402
from pipelines.core.vocabulary import TableStatus  # noqa: E402
from pipelines.runners.schedule import run_plan  # noqa: E402


def no_op(table: TablePlan, result: TableResult) -> None:
    result.status = TableStatus.SUCCESS


def current(plan: Plan) -> float:
    results = {t.name: TableResult(t.name, t.layer) for t in plan.tables}
    started = time.perf_counter()
    run_plan(plan, no_op, results, max_parallel=4)
    elapsed = time.perf_counter() - started
    assert all(r.succeeded for r in results.values())
    return elapsed


def rescanning(plan: Plan) -> float:
    """The scheduler before the ready queue: after each finished table, scan the whole plan."""
    results = {t.name: TableResult(t.name, t.layer) for t in plan.tables}
    children: dict[str, list[str]] = {n: [] for n in plan.order}
    for t in plan.tables:
        for dep in t.upstream_in_plan:
            children[dep].append(t.name)
    waiting = {t.name: len(t.upstream_in_plan) for t in plan.tables}
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        running: dict = {}

        def submit_ready() -> None:
            for name in plan.order:
                if waiting[name] == 0 and results[name].status is TableStatus.PENDING:
                    results[name].status = TableStatus.RUNNING
                    table = next(t for t in plan.tables if t.name == name)  # the linear lookup
                    running[pool.submit(no_op, table, results[name])] = name

        submit_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                for child in children[running.pop(future)]:
                    waiting[child] -= 1
            submit_ready()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-repeat", type=int, default=1, help="the rescanning loop is slow")
    args = parser.parse_args()
    plans = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1_000, 10_000):
            root = Path(tmp) / str(count)
            root.mkdir()
            plans[count] = build_plan(load_config(generate(root, count)))
    times = {count: [current(plan) for _ in range(args.repeat)] for count, plan in plans.items()}
    old = {count: [rescanning(plan) for _ in range(args.baseline_repeat)] for count, plan in plans.items()}
    for count in plans:
        print(f"{count:>6} tables: ready queue min {min(times[count]):.3f} s, median "
              f"{statistics.median(times[count]):.3f} s; rescanning min {min(old[count]):.3f} s")
    ratio = min(times[10_000]) / min(times[1_000])
    print(json.dumps({
        "bench": "scheduler", "ratio": round(ratio, 2),
        "seconds_10k_min": round(min(times[10_000]), 3),
        "seconds_10k_median": round(statistics.median(times[10_000]), 3),
        "seconds_1k_min": round(min(times[1_000]), 3),
        "us_per_table_10k": round(min(times[10_000]) / 10_000 * 1e6, 1),
        "rescanning_10k_min": round(min(old[10_000]), 3),
        "speedup_vs_rescanning_10k": round(min(old[10_000]) / min(times[10_000]), 1),
        "target": "10k tables < 1 s; ratio <= 12", "met": min(times[10_000]) < 1 and ratio <= 12,
    }))


if __name__ == "__main__":
    main()
