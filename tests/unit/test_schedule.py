"""The scheduler without Spark: tables start once their planned inputs succeeded, failures skip only
what is downstream, --fail-fast stops starting tables, a timed-out table is abandoned."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from pipelines.core.config import load_config
from pipelines.core.plan import Plan, build_plan
from pipelines.core.results import TableResult
from pipelines.core.vocabulary import TableStatus
from pipelines.runners.schedule import ReadyQueue, run_plan

#   a ─▶ b ─▶ d
#   a ─▶ c ─▶ d        e (independent) ─▶ f
CONFIG = """
pipeline: {name: s, schema: s}
tables:
  - {name: a, layer: bronze, source: {type: files, format: csv, path: ./in}}
  - {name: e, layer: bronze, source: {type: files, format: csv, path: ./in}}
  - {name: b, layer: silver, depends_on: [a]}
  - {name: c, layer: silver, depends_on: [a]}
  - {name: f, layer: silver, depends_on: [e]}
  - {name: d, layer: gold, depends_on: [b, c]}
"""


def make_plan(tmp_path: Path) -> Plan:
    (tmp_path / "config.yml").write_text(CONFIG)
    return build_plan(load_config(tmp_path / "config.yml"))


def run(plan: Plan, outcome=None, **options):
    """Run with tables that succeed (or fail where `outcome(name)` says so); record start/end.
    (An abandoned table's thread may still finish later; the runner's own tables ignore that.)"""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    results = {t.name: TableResult(t.name, t.layer) for t in plan.tables}

    def run_table(table, result):
        with lock:
            events.append(("start", table.name))
        if outcome:
            outcome(table.name)
        result.status = TableStatus.SUCCESS
        with lock:
            events.append(("end", table.name))

    def failing(table, result):
        try:
            run_table(table, result)
        except RuntimeError as exc:
            result.status, result.error = TableStatus.FAILED, str(exc)

    abandoned = run_plan(plan, failing, results, **options)
    return results, events, abandoned


def test_each_table_starts_after_all_its_inputs_ended(tmp_path):
    plan = make_plan(tmp_path)
    results, events, _ = run(plan, max_parallel=3)
    assert all(r.status is TableStatus.SUCCESS for r in results.values())
    position = {event: index for index, event in enumerate(events)}
    for table in plan.tables:
        for upstream in table.upstream_in_plan:
            assert position[("end", upstream)] < position[("start", table.name)], events


def test_the_ready_queue_pops_in_plan_order_and_releases_only_successors(tmp_path):
    plan = make_plan(tmp_path)
    queue = ReadyQueue(plan)
    assert [queue.pop(), queue.pop(), queue.pop()] == ["a", "e", None]
    queue.succeeded("e")
    assert (queue.pop(), queue.pop()) == ("f", None)
    queue.succeeded("a")
    assert [queue.pop(), queue.pop(), queue.pop()] == ["b", "c", None]
    queue.succeeded("b")
    assert queue.pop() is None  # d still waits for c
    assert queue.failed("c") == ["d"]
    assert queue.remaining() == []


def test_a_failure_skips_what_is_downstream_and_independent_tables_finish(tmp_path):
    def outcome(name):
        if name == "b":
            raise RuntimeError("boom")

    results, _, _ = run(make_plan(tmp_path), outcome, max_parallel=2)
    assert {n: r.status.value for n, r in results.items()} == {
        "a": "success", "e": "success", "b": "failed", "c": "success", "f": "success", "d": "skipped"}
    assert results["d"].error == "upstream table 'b' failed"


def test_fail_fast_starts_nothing_after_a_failure(tmp_path):
    def outcome(name):
        if name == "a":
            raise RuntimeError("boom")

    results, events, _ = run(make_plan(tmp_path), outcome, max_parallel=1, fail_fast=True)
    assert [name for kind, name in events if kind == "start"] == ["a"]
    assert results["e"].status is TableStatus.SKIPPED
    assert results["e"].error == "not started: --fail-fast stopped the run"


def test_a_table_past_its_timeout_is_abandoned_and_its_downstream_skipped(tmp_path):
    release = threading.Event()
    abandoned_names: list[str] = []

    def outcome(name):
        if name == "e":
            release.wait(10)

    started = time.monotonic()
    try:
        results, _, abandoned = run(make_plan(tmp_path), outcome, max_parallel=2, table_timeout=0.5,
                                    on_abandon=abandoned_names.append)
        assert abandoned == {"e"} and abandoned_names == ["e"]
        assert results["e"].status is TableStatus.FAILED and "timed out after 0.5 s" in results["e"].error
        assert results["f"].status is TableStatus.SKIPPED
        assert results["d"].status is TableStatus.SUCCESS  # the other branch finished
        assert time.monotonic() - started < 8
    finally:
        release.set()
