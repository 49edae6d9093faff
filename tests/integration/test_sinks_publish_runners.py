"""`sinks publish` reads what the most recent run wrote, whichever runner wrote it, and names that run:
after a Spark-runner run and then an SDP run (its own catalog under `.ldp/sdp`) over more landing data,
it publishes the SDP run's rows, not the Spark runner's older ones; `report` names the run it shows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.lakebase.connection import DSN_ENV
from tests.conftest import write_project
from tests.integration.conftest import rows

CONFIG = """
pipeline: {name: shop, schema: SCHEMA, transformations: ./transformations}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}
  - name: totals
    layer: gold
    depends_on: [raw]
    sinks:
      - {type: lakebase, schema: SCHEMA_app, mode: replace}
"""


def ldp_engine(root: Path, dsn: str, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("ldp_engine")), *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900,
                          env={**os.environ, DSN_ENV: dsn})


def run(root: Path, dsn: str, runner: str) -> str:
    done = ldp_engine(root, dsn, "--runner", runner, "--mode", "batch", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((root / ".ldp" / "runs" / "latest.json").read_text())
    assert record["summary"]["runner"] == runner
    return record["run_id"]


def test_sinks_publish_after_an_sdp_run_publishes_the_sdp_runs_rows_and_names_the_run(lakebase, tmp_path):
    schema = f"r{abs(hash(tmp_path)) % 10**6}"
    write_project(tmp_path, CONFIG.replace("SCHEMA", schema), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "gold/totals.py": "def totals(raw):\n    return raw.groupBy('k').sum('v').withColumnRenamed('sum(v)', 'v')\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\nb,5\n")
    dsn = lakebase.conninfo()
    spark_run = run(tmp_path, dsn, "spark")
    (tmp_path / "in/b.csv").write_text("k,v\na,10\nc,7\n")
    sdp_run = run(tmp_path, dsn, "sdp")
    with lakebase.connect() as conn:  # as if the sink had failed: publish must rewrite it
        conn.execute(f"DROP SCHEMA {schema}_app CASCADE")

    done = ldp_engine(tmp_path, dsn, "sinks", "publish", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["source_run"]["run_id"] == sdp_run != spark_run
    assert summary["source_run"]["runner"] == "sdp"
    assert summary["source_run"]["catalog"] == str(tmp_path / ".ldp" / "sdp")
    assert f"tables as written by run {sdp_run} (sdp runner" in done.stderr
    assert rows(lakebase, f"SELECT k, v FROM {schema}_app.totals ORDER BY k") == [("a", 11), ("b", 5), ("c", 7)]

    report = ldp_engine(tmp_path, dsn, "report")  # the latest run's page, naming that run
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"report of run {sdp_run} (sdp runner, finished " in report.stderr
    assert report.stdout.strip() == str(tmp_path / ".ldp" / "reports" / f"{sdp_run}.html")
