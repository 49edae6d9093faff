"""Faults injected into real runs (real processes, real signals, real Spark; no mocks): two runs on
one state folder, a run killed with SIGKILL mid-write, a transformation stuck past --table-timeout."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import write_project

PROCESSES = Path(__file__).resolve().parent / "processes"

CONFIG = """
pipeline: {schema: faults, transformations: ./transformations}
tables:
  - {name: raw, layer: bronze, source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}}
  - {name: clean, layer: silver, depends_on: [raw]}
  - {name: other, layer: silver, depends_on: [raw]}
  - {name: report, layer: gold, depends_on: [clean]}
"""
MODULES = {
    "bronze/raw.py": "def raw(source):\n    return source\n",
    "silver/clean.py": "def clean(raw):\n    return raw.where('amount > 0')\n",
    "silver/other.py": "def other(raw):\n    return raw.groupBy('id').count()\n",
    "gold/report.py": "def report(clean):\n    return clean.groupBy().sum('amount').toDF('total')\n",
}
SLOW_WRITE = ("def clean(raw, spark):  # ~100M rows: a write that lasts well past the kill\n"
              "    return raw.where('amount > 0').crossJoin(spark.range(4_000_000).withColumnRenamed('id', 'n'))\n")
VERSIONED = ("from pathlib import Path\nfrom pyspark.sql import functions as F\n"
             "def clean(raw, spark):  # each rewrite: 20,000 rows, all of one version (version.txt)\n"
             "    version = int(Path('version.txt').read_text())\n"
             "    return spark.range(20_000).withColumn('v', F.lit(version)).withColumn('amount', F.lit(1))\n")
STUCK = "import time\ndef clean(raw):\n    time.sleep(600)\n    return raw\n"


def project(root: Path, modules: dict[str, str] = MODULES) -> Path:
    write_project(root, CONFIG, modules)
    (root / "in").mkdir(exist_ok=True)
    (root / "in" / "day1.csv").write_text("id,amount\n" + "".join(f"{i},{i % 7 - 1}\n" for i in range(40)))
    return root


def ldp_engine(root: Path, *args: str, **options) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("ldp_engine")), "--format", "json", *args]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **options)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, dict, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, json.loads(stdout), stderr


def wait_for(predicate, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def delta_table(catalog: Path, table: str):
    """A table of the `faults` schema as the JVM-free reader sees it (Delta's log and files)."""
    from pipelines.catalog.reader import stored_table

    return stored_table(catalog, "faults", table)


def rows(catalog: Path, table: str, version: int | None = None) -> list[tuple]:
    from pipelines.catalog.reader import TimeTravel

    data, columns = delta_table(catalog, table).open(TimeTravel(version=version))
    return sorted(tuple(row[c] for c in columns) for row in data.to_table().to_pylist())


def test_a_second_run_on_the_same_state_folder_gets_a_clear_answer_and_can_wait(tmp_path):
    """The reproduction: two runs a few seconds apart used to crash the second one inside Hive's
    metastore, printing nothing on stdout with --format json."""
    root = project(tmp_path)
    first = ldp_engine(root)
    wait_for(lambda: (root / ".ldp/ldp.lock.json").exists(), what="the first run to take the lock")
    code, summary, stderr = finish(ldp_engine(root), timeout=60)
    assert code == 3 and summary["status"] == "error", stderr
    [error] = summary["errors"]
    assert f"in use by process {first.pid}" in error and "--wait SECONDS" in error
    assert "HiveException" not in stderr and "Traceback" not in stderr
    waiting = ldp_engine(root, "--wait", "600")
    assert finish(first)[0] == 0
    code, summary, stderr = finish(waiting)
    assert code == 0 and summary["status"] == "success", stderr


def test_a_run_killed_mid_write_leaves_the_previous_version_and_the_next_run_recovers(tmp_path):
    root = project(tmp_path)
    code, first, stderr = finish(ldp_engine(root))
    assert code == 0, stderr[-3000:]
    catalog = root / ".ldp"
    expected = rows(catalog, "clean")
    [current] = delta_table(catalog, "clean").history()

    write_project(root, CONFIG, {**MODULES, "silver/clean.py": SLOW_WRITE})
    killed = ldp_engine(root, "--select", "clean")
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in killed.stderr), daemon=True).start()
    wait_for(lambda: any("clean [silver] started" in line for line in lines) or killed.poll() is not None,
             what="the rewrite of clean")
    assert killed.poll() is None, lines[-20:]
    time.sleep(8)  # well inside the ~100M-row write
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    # nothing was committed: the previous version is current and whole
    assert delta_table(catalog, "clean").history() == [current] and rows(catalog, "clean") == expected

    write_project(root, CONFIG, MODULES)
    code, summary, stderr = finish(ldp_engine(root))
    assert code == 0, stderr
    assert {t["name"]: t["rows_written"] for t in summary["tables"]}["clean"] == len(expected)
    assert rows(catalog, "clean") == expected
    assert [c["run_id"] for c in delta_table(catalog, "clean").history()] == [summary["run_id"], first["run_id"]]
    assert not (catalog / "ldp.lock.json").exists()


def test_a_stuck_transformation_times_out_and_the_run_ends(tmp_path):
    root = project(tmp_path, {**MODULES, "silver/clean.py": STUCK})
    started = time.monotonic()
    code, summary, stderr = finish(ldp_engine(root, "--table-timeout", "45"), timeout=500)
    assert time.monotonic() - started < 300  # not the transformation's 600 s
    assert code == 3, stderr
    tables = {t["name"]: t for t in summary["tables"]}
    assert tables["clean"]["status"] == "failed" and "timed out after 45 s" in tables["clean"]["error"]
    assert tables["report"]["status"] == "skipped"
    assert tables["other"]["status"] == "success" and tables["raw"]["status"] == "success"


def test_a_reader_in_another_process_never_sees_an_empty_partial_or_mixed_version(tmp_path):
    """The writer serves its catalog over Spark Connect (127.0.0.1) and rewrites `clean` six times; a
    reader process polls it throughout: every read is one whole version (20,000 rows of one version,
    the checksum of ids intact)."""
    import socket

    root = project(tmp_path, {**MODULES, "silver/clean.py": VERSIONED})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    writer = subprocess.Popen([sys.executable, PROCESSES / "rewriter.py", root, port, "6"], cwd=root, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = tmp_path / "stop"
    try:
        assert writer.stdout.readline().strip() == "ready"
        reader = subprocess.Popen([sys.executable, PROCESSES / "reader.py", port, "faults.clean", stop],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = reader.stdout.readline()
        assert first.startswith("{"), reader.communicate(timeout=60)[1][-2000:]
        writer.stdin.write("go\n")
        writer.stdin.flush()
        progress = [writer.stdout.readline().strip() for _ in range(7)]
        assert progress[-1] == "done", progress
        stop.touch()
        rest, errors = reader.communicate(timeout=120)
        assert reader.returncode == 0, errors[-2000:]
    finally:
        writer.stdin.close()
        writer.wait(timeout=120)
    reads = [json.loads(line) for line in [first, *rest.splitlines()] if line.startswith("{")]
    assert all((r["rows"], r["versions"], r["checksum"]) == (20_000, 1, 20_000 * 19_999 // 2) for r in reads), \
        [r for r in reads if r["rows"] != 20_000 or r["versions"] != 1][:5]
    assert len({r["v"] for r in reads}) >= 3, reads  # the reads spanned the rewrites


SDP_MODULES = {**MODULES, "gold/report.py": ("from pyspark.sql import functions as F\n"
                                             "def report(clean):\n    return clean.agg(F.sum('amount').alias('total'))\n")}


def test_a_run_killed_during_an_sdp_update_is_recovered_by_restore_and_by_the_next_run(tmp_path):
    """SIGKILL to the whole process group (CLI, Spark's launcher, the driver and its JVM) while SDP
    refreshes `clean`. Open-source SDP refreshes a materialized view as TRUNCATE, SET TBLPROPERTIES,
    WRITE: three Delta commits. Whatever the kill interrupted, the first run's complete version stays in
    the history: `restore` brings it back at once, and the next run recomputes every table."""
    root = project(tmp_path, SDP_MODULES)
    code, summary, stderr = finish(ldp_engine(root, "--runner", "sdp"), timeout=900)
    assert code == 0, stderr[-3000:]
    expected = {t["name"]: t["rows_written"] for t in summary["tables"]}
    catalog = root / ".ldp/sdp"
    complete = max(c["version"] for c in delta_table(catalog, "clean").history() if c["run_id"] == summary["run_id"])
    expected_rows = rows(catalog, "clean", complete)
    assert len(expected_rows) == expected["clean"]

    write_project(root, CONFIG, {**SDP_MODULES, "silver/clean.py": SLOW_WRITE})
    killed = ldp_engine(root, "--runner", "sdp", "--select", "clean", start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in killed.stderr), daemon=True).start()
    wait_for(lambda: any("faults.clean is RUNNING" in line for line in lines) or killed.poll() is not None,
             timeout=600, what="the refresh of clean")
    assert killed.poll() is None, lines[-20:]
    time.sleep(2)  # inside the refresh
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()

    write_project(root, CONFIG, SDP_MODULES)
    restore = subprocess.run([str(Path(sys.executable).with_name("ldp_engine")), "restore", "clean", "--version",
                              str(complete), "--format", "json"], cwd=root, capture_output=True, text=True,
                             timeout=600)
    assert restore.returncode == 0 and json.loads(restore.stdout)["restored_version"] == complete, restore.stderr
    assert rows(catalog, "clean") == expected_rows
    assert delta_table(catalog, "clean").interrupted_refresh() is None

    code, summary, stderr = finish(ldp_engine(root, "--runner", "sdp"), timeout=900)
    assert code == 0, stderr[-3000:]
    assert {t["name"]: t["rows_written"] for t in summary["tables"]} == expected
    assert rows(catalog, "clean") == expected_rows
    assert not list((catalog / "warehouse").glob("**/_temporary"))
    assert not list((catalog / "warehouse").glob("*__ldp_dry_run*"))
    assert not (root / ".ldp/ldp.lock.json").exists()
