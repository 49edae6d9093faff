"""How much of an SDP run do its after-table consumers cost, through the run's own server or a JVM of
their own?

The example project (8 tables, checks, monitors, Lakebase sinks, the report; its Kafka table on the
embedded broker) is run whole, `ldp_engine --runner sdp --mode batch`, as a fresh process each time,
alternating two ways: the consumers read and write through the pipeline process's Spark Connect
server, held until they are done (what the engine does), or through a local Spark session of their
own started after the pipeline process ended (the baseline: what it did before). Each run starts on
an empty state folder, so both do the same work. `ratio` = median(held) / median(own session).

Target: < 1 (the held server saves a JVM and a Hive catalog start). Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OWN_SESSION = ("import pipelines.ldp.sdp as sdp\n"
               "sdp.reads_over_connect = lambda plan: False  # the baseline: a local session of their own\n"
               "from pipelines.engine.cli import main\nmain()\n")
HELD = "from pipelines.engine.cli import main\nmain()\n"


def project(root: Path) -> Path:
    shutil.copy2(REPO / "config.yml", root / "config.yml")
    for folder in ("data", "expectations"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def run(script: str, root: Path) -> float:
    shutil.rmtree(root / ".ldp", ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, "--runner", "sdp", "--mode", "batch", "--format", "json"],
                          cwd=root, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    summary = json.loads(proc.stdout)
    if proc.returncode != 0 or summary["status"] != "success":
        raise SystemExit(f"the run failed: {proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ldp_bench_sdp_") as folder:
        root = project(Path(folder))
        run(HELD, root)  # warm: the broker's and Spark's jars fetched, bytecode compiled
        held, own = [], []
        for _ in range(args.repeat):  # alternating, so the machine's load falls on both alike
            held.append(run(HELD, root))
            own.append(run(OWN_SESSION, root))
            print(f"held {held[-1]:.1f} s, own session {own[-1]:.1f} s", flush=True)
    print(json.dumps({"bench": "sdp_consumers", "ratio": round(statistics.median(held) / statistics.median(own), 3),
                      "held_s": {"min": round(min(held), 1), "median": round(statistics.median(held), 1)},
                      "own_session_s": {"min": round(min(own), 1), "median": round(statistics.median(own), 1)},
                      "repeat": args.repeat}))


if __name__ == "__main__":
    main()
