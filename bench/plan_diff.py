"""What does `ldp_engine plan` cost, against `run --dry-run`?

1. In process, on a 1,000-table project (plan_scale's generator) whose every table is stored (a
   one-column Delta table written with deltalake) and named in a run record with its declarations:
   `plan --no-schemas --format json` (reads 1,000 Delta logs, diffs every table's declarations) against
   `run --dry-run --format json` (validate, import modules, plan), side by side, alternating.
   `ratio` = median(plan) / median(dry run). Target: plan < 2 s.
2. The example as whole processes, its tables stored the same way, the full `plan` against
   `run --dry-run` (no JVM), twice: with the run record holding each query's digest as a run records it
   (nothing changed since: stored columns taken as resolved, no JVM), and without (every table without a
   contract resolved on empty inputs: starts a local JVM, the floor of a plan after a query edit).
Last stdout line: one JSON object.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from click.testing import CliRunner  # noqa: E402

from plan_scale import generate  # noqa: E402
from pipelines.core.changes import declarations, query_digests  # noqa: E402
from pipelines.core.config import load_config  # noqa: E402
from pipelines.engine.cli import cli  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def stored_project(root: Path, size: int) -> tuple[Path, Path]:
    """A generated project, every table stored in `{root}/state` and recorded by a run."""
    path = generate(root, size)
    for line in path.read_text().splitlines():  # the bronze tables' landing folders must exist
        if "path: ./landing/" in line:
            (path.parent / line.split("path: ")[1].rstrip("}")).mkdir(parents=True, exist_ok=True)
    return path, store_every_table(path, root / "state")


def store_every_table(path: Path, state: Path, digests: bool = False) -> Path:
    """Each table of the config at `path` stored as a one-column Delta table, and a run record naming it
    (with `digests`, also each query's digest, as a successful batch run records it)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    config = load_config(path)
    folder = state / "warehouse" / f"{config.pipeline.schema_name}.db"
    for table in config.tables:
        write_deltalake(str(folder / table.name), pa.table({"id": pa.array([1], pa.int64())}))
    (state / "runs").mkdir(parents=True)
    queries = query_digests(config, [t.name for t in config.tables], "batch") if digests else {}
    record = {"run_id": "r1", "finished_at": time.time(), "selection": [t.name for t in config.tables],
              "summary": {"runner": "spark"},
              "declared": {t.name: {**declarations(t, config.base_dir), **(
                  {"query": queries[t.name]} if t.name in queries else {})} for t in config.tables}}
    (state / "runs" / "r1.json").write_text(json.dumps(record))
    return state


def in_process(*args: str) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, list(args))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output[-2000:]
    return elapsed


def whole_process(cwd: Path, *args: str) -> float:
    engine = str(Path(sys.executable).with_name("ldp_engine"))
    started = time.perf_counter()
    done = subprocess.run([engine, *args], cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--process-repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, state = stored_project(Path(tmp) / "scale", args.size)
        common = ["--config", str(path), "--state-dir", str(state), "--format", "json"]
        plan_s, dry_s = [], []
        for _ in range(args.repeats):  # alternate, so both see the same machine
            plan_s.append(in_process("plan", "--no-schemas", *common))
            dry_s.append(in_process("run", "--dry-run", *common))
        examples = {}
        for digests in (True, False):
            example = examples[digests] = Path(tmp) / f"example-{digests}"
            example.mkdir()
            for name in ("config.yml", "data", "expectations"):
                (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, example / name)
            store_every_table(example / "config.yml", example / ".ldp", digests)  # plan compares what is stored
        full_s, unchanged_s, example_dry_s = [], [], []
        for _ in range(args.process_repeats):
            unchanged_s.append(whole_process(examples[True], "plan", "--format", "json"))
            full_s.append(whole_process(examples[False], "plan", "--format", "json"))
            example_dry_s.append(whole_process(examples[False], "--dry-run", "--format", "json"))
    ratio = statistics.median(plan_s) / statistics.median(dry_s)
    print(f"{args.size} stored tables, in process: plan --no-schemas {min(plan_s):.2f}s (median "
          f"{statistics.median(plan_s):.2f}s), run --dry-run {min(dry_s):.2f}s (median {statistics.median(dry_s):.2f}s)")
    print(f"example, whole process: plan, nothing changed since the run {min(unchanged_s):.1f}s (median "
          f"{statistics.median(unchanged_s):.1f}s), plan resolving every query {min(full_s):.1f}s (median "
          f"{statistics.median(full_s):.1f}s), run --dry-run {min(example_dry_s):.1f}s "
          f"(median {statistics.median(example_dry_s):.1f}s)")
    print(json.dumps({
        "bench": "plan_diff", "ratio": round(ratio, 2), "baseline": f"run --dry-run, {args.size} tables, in process",
        "plan_no_schemas_s": {"min": round(min(plan_s), 3), "median": round(statistics.median(plan_s), 3)},
        "dry_run_s": {"min": round(min(dry_s), 3), "median": round(statistics.median(dry_s), 3)},
        "example_plan_unchanged_process_s": {"min": round(min(unchanged_s), 2),
                                             "median": round(statistics.median(unchanged_s), 2)},
        "example_plan_resolving_process_s": {"min": round(min(full_s), 2), "median": round(statistics.median(full_s), 2)},
        "example_dry_run_process_s": {"min": round(min(example_dry_s), 2),
                                      "median": round(statistics.median(example_dry_s), 2)},
        "target": f"plan --no-schemas on {args.size} tables < 2 s in process",
        "ok": statistics.median(plan_s) < 2.0}))


if __name__ == "__main__":
    main()
