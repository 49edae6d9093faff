"""`--runner sdp` beside other SDP runs, and when it cannot start: two projects' runs started at the
same moment both succeed (each takes its own free loopback port for Spark Connect); a table that fails
names the user's error (not only the write task that failed) and, like the tables it skips, reports no
numbers of an older run; a streaming table reports the rows this run appended and its total apart; the
run record holds the real start and end and the run id the process was given; a run whose port is
taken fails with the cause, not a stack tail."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import yaml

from tests.integration.test_sdp_runner import everyday_project, ldp_engine

EXPECTED = {"ev_raw_a": 4, "ev_raw_b": 4, "ev_clean_a": 2, "ev_clean_b": 2, "ev_all": 2}
FAILING = (  # the same columns and types as before (a changed schema fails the level before its flows),
    # but it fails when the flow runs, after analysis
    "from pyspark.sql import functions as F\n\n\n"
    "def ev_clean_a(ev_raw_a):\n"
    "    return (ev_raw_a.dropDuplicates([\"id\"]).drop(\"noise\").withColumnRenamed(\"val\", \"v\")\n"
    "            .select(\"id\", F.when(F.col(\"id\") > 0, F.raise_error(F.lit(\"boom-ev\"))).otherwise(F.col(\"v\"))\n"
    "                    .alias(\"v\"), F.lit(\"a\").alias(\"origin\")))\n")


def start(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(ldp_engine("--runner", "sdp", "--format", "json", *args), cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def finish(process: subprocess.Popen) -> tuple[int, dict, str]:
    stdout, stderr = process.communicate(timeout=900)
    return process.returncode, json.loads(stdout), stderr


def project(root: Path) -> Path:
    root.mkdir()
    return everyday_project(root)


def tables(summary: dict) -> dict[str, dict]:
    return {t["name"]: t for t in summary["tables"]}


def test_two_projects_run_at_once_with_honest_numbers_and_real_timings(tmp_path):
    streaming, batch = project(tmp_path / "a"), project(tmp_path / "b")
    started = time.time()
    pair = [start(streaming, "--mode", "streaming"), start(batch)]
    (code_a, first_a, err_a), (code_b, first_b, err_b) = map(finish, pair)
    assert (code_a, code_b) == (0, 0), (err_a[-3000:], err_b[-3000:])
    for summary in (first_a, first_b):
        assert summary["status"] == "success", summary
        assert {name: t["rows_written"] for name, t in tables(summary).items()} == EXPECTED
        assert {name: t["rows_total"] for name, t in tables(summary).items()} == EXPECTED

    # the run record: the run id the process was given in its spec, the real start and end
    record = json.loads((batch / ".ldp/runs/latest.json").read_text())
    spec = yaml.safe_load((batch / ".ldp/sdp/spark-pipeline.yml").read_text())
    assert spec["configuration"]["ldp.run_id"] == record["run_id"]
    assert started <= record["started_at"] <= (batch / ".ldp/sdp/spark-pipeline.yml").stat().st_mtime
    assert record["finished_at"] - record["started_at"] > 10  # a JVM start at least, not 0 s

    # reruns, again at once: new landing rows for the streaming project, a failing table in the other
    (streaming / "landing/a/part-2.json").write_text('{"id": 4, "val": "w", "noise": 3}\n'
                                                     '{"id": 5, "val": "u", "noise": 4}\n')
    (batch / "transformations/silver/ev_clean_a.py").write_text(FAILING)
    pair = [start(streaming, "--mode", "streaming"), start(batch)]
    (code_a, rerun_a, err_a), (code_b, rerun_b, err_b) = map(finish, pair)
    assert (code_a, code_b) == (0, 3), (err_a[-3000:], err_b[-3000:])
    appended = tables(rerun_a)
    assert (appended["ev_raw_a"]["rows_written"], appended["ev_raw_a"]["rows_total"]) == (2, 6)
    assert (appended["ev_raw_b"]["rows_written"], appended["ev_raw_b"]["rows_total"]) == (0, 4)
    assert (appended["ev_clean_a"]["rows_written"], appended["ev_clean_a"]["rows_quarantined"]) == (4, 1)
    failed = tables(rerun_b)
    # On Delta the flow fails in its write task: the event's first message names only the write, and
    # the user's own error (raise_error's condition and message) is its cause, as the Spark runner says
    error = failed["ev_clean_a"]["error"]
    assert failed["ev_clean_a"]["status"] == "failed" and error.startswith("[TASK_WRITE_FAILED] "), error
    assert "/ev_clean_a. SQLSTATE: 58030; caused by: [USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001" in error
    [run_error] = rerun_b["errors"]  # the run's own error too: the client keeps the server's causes
    assert run_error.endswith("; caused by: org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] "
                              "boom-ev SQLSTATE: P0001"), run_error
    assert failed["ev_all"]["status"] == "skipped"
    for name in ("ev_clean_a", "ev_all"):  # the stored tables still hold the first run's rows: not reported
        assert failed[name]["rows_written"] is None, failed[name]
        assert not {"rows_quarantined", "rows_total", "checks"} & set(failed[name]), failed[name]
    assert (failed["ev_raw_a"]["status"], failed["ev_raw_a"]["rows_written"]) == ("success", 4)


def test_a_run_whose_port_is_taken_says_why_or_retries_on_a_free_one(tmp_path, monkeypatch):
    """Its Spark Connect port (forced with LDP_SDP_PORT) is taken: exit 3, and the summary, stderr
    and the run record name the Java exception with its class, without a Python traceback. A free
    port taken by someone else before the server bound it is retried once, on another."""
    from pipelines.core.graph import Selection
    from pipelines.engine import sdp_driver
    from pipelines.engine.project import load_project
    from pipelines.ldp import sdp

    project = everyday_project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, summary, stderr = finish(start(project, env={"LDP_SDP_PORT": str(port)}))
        picks = iter([port, sdp.free_port()])  # the first "free" port is the taken one
        monkeypatch.setattr(sdp, "free_port", lambda: next(picks))
        monkeypatch.delenv("LDP_SDP_PORT", raising=False)
        plan = load_project(project / "config.yml", Selection(select=("ev_raw_a",))).plan
        echoed: list[str] = []
        raw = sdp.SdpRun(plan, project / "config.yml", project / ".ldp", Path(sdp_driver.__file__)).execute(
            dry_run=True, echo=echoed.append)
    assert raw["status"] == "success" and raw["datasets"]["ev_raw_a"]["status"] == "success", raw
    assert f"Spark Connect port {port} was taken before the server bound it: retrying on another" in echoed
    cause = (f"java.net.BindException: Failed to bind to address /127.0.0.1:{port}: Service "
             f"'org.apache.spark.sql.connect.service.SparkConnectService' failed after 0 retries (starting from {port})!")
    assert code == 3, stderr[-3000:]
    [error] = summary["errors"]
    assert error.startswith("the Spark Declarative Pipelines process failed (exit code 1): py4j.protocol."
                            "Py4JJavaError: An error occurred while calling None.org.apache.spark.api.java."
                            f"JavaSparkContext. | {cause}"), error
    assert error.endswith(f"(LDP_SDP_PORT={port} is taken: unset it, and each run takes a free port)")
    assert summary["status"] == "failed" and {t["status"] for t in summary["tables"]} == {"skipped"}
    assert all(t["rows_written"] is None for t in summary["tables"])
    assert f"error: {error}" in stderr and "Traceback" not in stderr, stderr
    record = json.loads((project / ".ldp/runs/latest.json").read_text())
    assert record["summary"]["errors"] == [error]
