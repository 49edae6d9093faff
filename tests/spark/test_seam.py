"""The after-table seam on the Spark runner: every written table reaches every consumer with its counts
and a reader of the stored table, the finished run reaches them once, and a failing consumer is
reported on its table and fails the run without touching any table."""
from __future__ import annotations

import json

from pipelines.consumers.run_record import RunRecord
from pipelines.core.seam import Consumer, Consumers

from .harness import Harness, add_file


class Recorder:
    name = "recorder"

    def __init__(self):
        self.tables: dict[str, tuple[int | None, int]] = {}
        self.runs: list[str] = []

    def on_table_written(self, table, result, read):
        self.tables[table.name] = (result.rows_written, read().count())

    def on_run_finished(self, run):
        self.runs.append(run.status)


class Broken:
    name = "broken_sink"

    def on_table_written(self, table, result, read):
        if table.name == "clean":
            raise ConnectionError("sink unreachable")

    def on_run_finished(self, run):
        pass


def test_consumers_see_each_written_table_and_the_run(spark, tmp_path):
    harness = Harness(spark, tmp_path)
    add_file(tmp_path, "a.csv", [(1, 10), (2, -5), (3, 7)])
    recorder = Recorder()
    tables, run = harness.run(consumers=Consumers([recorder]))
    assert isinstance(recorder, Consumer)
    assert run.status == "success" and recorder.runs == ["success"]
    assert recorder.tables == {"raw": (3, 3), "clean": (2, 2), "other": (3, 3), "report": (1, 1)}
    plan_record = RunRecord(tmp_path / "runs", _plan(harness))
    Consumers([plan_record]).run_finished(run)
    record = json.loads((tmp_path / "runs" / f"{run.run_id}.json").read_text())
    assert record["summary"] == run.to_dict() and record["run_id"] == run.run_id
    assert json.loads((tmp_path / "runs" / "latest.json").read_text()) == record


def test_a_failing_consumer_is_reported_on_its_table_and_fails_the_run(spark, tmp_path):
    harness = Harness(spark, tmp_path)
    add_file(tmp_path, "a.csv", [(1, 10), (2, 20)])
    recorder = Recorder()
    tables, run = harness.run(consumers=Consumers([Broken(), recorder]))
    assert all(t.status == "success" for t in tables.values())  # the tables are as written
    assert tables["clean"].consumer_errors == {"broken_sink": "ConnectionError: sink unreachable"}
    assert run.status == "failed" and run.to_dict()["tables"][1]["consumers"] == tables["clean"].consumer_errors
    assert recorder.tables["clean"] == (2, 2)  # the next consumer still ran
    assert harness.table("clean").count() == 2


def _plan(harness):
    from pipelines.engine.project import load_project

    return load_project(harness.path).plan


class Failing:
    name = "verdict"

    def on_table_written(self, table, result, read):
        from pipelines.core.seam import TableFailed

        if table.name == "clean":
            raise TableFailed("refused")

    def on_run_finished(self, run):
        pass


def test_a_table_failed_by_a_consumer_reaches_no_later_consumer_and_its_downstream_is_skipped(spark, tmp_path):
    harness = Harness(spark, tmp_path)
    add_file(tmp_path, "a.csv", [(1, 10), (2, 20)])
    recorder = Recorder()
    tables, run = harness.run(consumers=Consumers([Failing(), recorder]))
    assert (tables["clean"].status, tables["clean"].error) == ("failed", "verdict: refused")
    assert tables["report"].status == "skipped" and "clean" not in recorder.tables
    assert harness.table("clean").count() == 2  # written before the verdict
