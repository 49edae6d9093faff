"""Running a plan's tables on a thread pool, each as soon as its planned inputs succeeded.

A ready queue driven by successors (as dbt-core's graph queue): when a table finishes, only the tables
that read it are looked at, so scheduling n tables costs O(n + edges), not a rescan of the plan per
table (bench/scheduler.py). A failed table skips everything downstream of it; independent branches
finish, unless `fail_fast`. A table past `table_timeout` seconds is abandoned: reported failed at once,
its thread left to end on its own (`on_abandon` may cancel its work).
"""
from __future__ import annotations

import heapq
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable

from pipelines.core.plan import Plan, TablePlan
from pipelines.core.results import TableResult
from pipelines.core.vocabulary import TableStatus

RunTable = Callable[[TablePlan, TableResult], None]  # sets the result's status, counts and error
Event = Callable[[str, TableResult], None]  # kind in started/finished/failed/skipped


class ReadyQueue:
    """Which planned tables may start: all planned inputs succeeded. Pops in plan order."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.position = {name: index for index, name in enumerate(plan.order)}
        self.waiting = {t.name: len(t.upstream_in_plan) for t in plan.tables}
        self.ready = [self.position[name] for name, count in self.waiting.items() if count == 0]
        heapq.heapify(self.ready)
        self.closed: set[str] = set()  # started, finished or skipped

    def pop(self) -> str | None:
        while self.ready:
            name = self.plan.order[heapq.heappop(self.ready)]
            if name not in self.closed:
                self.closed.add(name)
                return name
        return None

    def succeeded(self, name: str) -> None:
        for child in self.plan.successors[name]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                heapq.heappush(self.ready, self.position[child])

    def failed(self, name: str) -> list[str]:
        """Everything downstream of `name` that has not started: closed now, to be reported skipped."""
        skipped = [child for child in self.plan.downstream_of([name]) if child != name and child not in self.closed]
        self.closed.update(skipped)
        return sorted(skipped)

    def remaining(self) -> list[str]:
        return [name for name in self.plan.order if name not in self.closed]


def run_plan(plan: Plan, run_table: RunTable, results: dict[str, TableResult], max_parallel: int = 4,
             fail_fast: bool = False, table_timeout: float | None = None, on_event: Event | None = None,
             on_abandon: Callable[[str], None] | None = None) -> set[str]:
    """Run every table of `results` (keyed and ordered as the plan); return the abandoned tables."""
    on_event = on_event or (lambda kind, result: None)
    queue = ReadyQueue(plan)
    workers = max(1, max_parallel)  # submitted = started: a deadline counts from the start
    pool = ThreadPoolExecutor(workers, thread_name_prefix="ldp")
    running: dict[Future[None], str] = {}
    deadlines: dict[Future[None], float] = {}
    abandoned: set[str] = set()
    stop = False

    def skip(names: Iterable[str], reason: str) -> None:
        for name in names:
            results[name].status, results[name].error = TableStatus.SKIPPED, reason
            on_event("skipped", results[name])

    def submit_ready() -> None:
        while not stop and len(running) < workers and (name := queue.pop()) is not None:
            results[name].status = TableStatus.RUNNING
            future = pool.submit(run_table, plan.table(name), results[name])
            running[future] = name
            if table_timeout:
                deadlines[future] = time.monotonic() + table_timeout

    def finished(name: str) -> None:
        nonlocal stop
        if results[name].succeeded:
            queue.succeeded(name)
        else:
            skip(queue.failed(name), f"upstream table '{name}' failed")
            stop = stop or fail_fast

    try:
        submit_ready()
        while running:
            timeout = max(0.0, min(deadlines.values()) - time.monotonic()) if deadlines else None
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                deadlines.pop(future, None)
                finished(running.pop(future))
            for future in [f for f, at in deadlines.items() if at <= time.monotonic() and not f.done()]:
                name = running.pop(future)
                deadlines.pop(future)
                abandoned.add(name)
                if on_abandon:  # first: the table's thread must know before its result changes
                    on_abandon(name)
                result = results[name]
                result.status, result.seconds = TableStatus.FAILED, float(table_timeout or 0)
                result.error = (f"timed out after {table_timeout:g} s (--table-timeout); nothing it "
                                "computes from now on is written")
                on_event("failed", result)
                finished(name)
            submit_ready()
    finally:
        pool.shutdown(wait=not abandoned, cancel_futures=True)
    if stop:
        skip(queue.remaining(), "not started: --fail-fast stopped the run")
    return abandoned
