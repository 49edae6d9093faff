"""`ldp_engine show` reads what the most recent run wrote, whichever runner wrote it, names that run,
and reads the files without starting a JVM: a Spark-runner run, then an SDP run (its own catalog under
`.ldp/sdp`), then a Spark-runner run again, each over different landing data."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """\
pipeline:
  name: shop
  schema: shop
  transformations: ./transformations
tables:
  - name: events
    layer: bronze
    source: {type: files, format: csv, path: ./landing, schema: "id INT, name STRING", options: {header: true}}
"""


def ldp_engine(project: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("ldp_engine")), *args]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)


def run(project: Path, runner: str) -> str:
    done = ldp_engine(project, "--mode", "batch", "--runner", runner, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((project / ".ldp" / "runs" / "latest.json").read_text())
    assert record["summary"]["runner"] == runner
    return record["run_id"]


def show(project: Path, *args: str) -> tuple[dict, str, float]:
    started = time.monotonic()
    done = ldp_engine(project, "show", "events", "--format", "json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout), done.stderr, time.monotonic() - started


def land(project: Path, name: str, rows: list[tuple[int, str]]) -> None:
    (project / "landing" / name).write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))


def test_show_follows_the_last_run_across_runners_without_a_jvm(tmp_path):
    project = tmp_path / "shop"
    (project / "transformations" / "bronze").mkdir(parents=True)
    (project / "landing").mkdir()
    (project / "config.yml").write_text(CONFIG)
    (project / "transformations" / "bronze" / "events.py").write_text(
        "def events(source):\n    return source\n")
    land(project, "a.csv", [(1, "a"), (2, "b")])
    spark_run = run(project, "spark")

    land(project, "b.csv", [(3, "c")])
    sdp_run = run(project, "sdp")
    shown, stderr, seconds = show(project)
    assert sorted(r["id"] for r in shown["rows"]) == [1, 2, 3]  # the SDP run's rows, not the Spark runner's
    assert shown["run"]["run_id"] == sdp_run != spark_run and shown["run"]["runner"] == "sdp"
    assert shown["run"]["catalog"] == str(project / ".ldp" / "sdp") and shown["reader"] == "files"
    assert f"as written by run {sdp_run} (sdp runner" in stderr
    assert seconds < 20, seconds  # no JVM: a Spark start alone takes longer on this machine
    filtered, _, _ = show(project, "--where", "id >= 2 AND name <> 'c'", "--columns", "name")
    assert filtered["rows"] == [{"name": "b"}] and filtered["reader"] == "files"

    (project / "landing" / "b.csv").unlink()
    land(project, "c.csv", [(4, "d")])
    again = run(project, "spark")
    shown, stderr, _ = show(project)
    assert sorted(r["id"] for r in shown["rows"]) == [1, 2, 4]  # and back to the Spark runner's catalog
    assert shown["run"]["run_id"] == again and shown["run"]["runner"] == "spark" and shown["reader"] == "files"
    assert shown["run"]["catalog"] == str(project / ".ldp")
