"""A process that rewrites one table several times with the Spark runner, serving its catalog to other
processes through Spark Connect on 127.0.0.1:PORT (the test's reader is such a process).

    python rewriter.py PROJECT PORT REWRITES
Prints "ready" once the first version is written, waits for a line on stdin ("go"), rewrites, prints
"done" after the last version and serves until stdin closes."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pipelines.catalog.session import LOOPBACK, local_session
from pipelines.catalog.storage import TableStore
from pipelines.core.graph import Selection
from pipelines.engine.project import load_project
from pipelines.runners.spark import SparkRunner

root, port, rewrites = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
spark = local_session(root / ".ldp", master="local[2]", extra_conf={
    "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
    "spark.connect.grpc.binding.address": LOOPBACK, "spark.connect.grpc.binding.port": port})
for version in range(rewrites + 1):
    (root / "version.txt").write_text(str(version))
    project = load_project(root / "config.yml", Selection(select=("clean",) if version else ()))
    result = SparkRunner(spark, project.plan, project.functions,
                         TableStore(spark, project.plan.pipeline, root / ".ldp")).run()
    assert result.succeeded, result.to_dict()
    print("ready" if version == 0 else f"rewrote {version}", flush=True)
    if version == 0:
        sys.stdin.readline()
    time.sleep(0.5)
print("done", flush=True)
sys.stdin.read()  # keep serving until the test closes stdin
