"""How does validate + plan scale with the number of tables?

Generates projects of 1,000 and 10,000 tables (config.yml plus one module per table, in a temp
folder), then times, in this process: loading and validating config.yml, checking the graph and
building the plan, and (separately) importing and signature-checking every module. The 1,000-table
project is the baseline; `ratio` = time(10,000) / time(1,000), so linear growth gives ~10.

Targets: 10,000 tables validate + plan in < 1 s; ratio <= 12. Module imports (first import,
bytecode compiled) are reported beside it: they are file-system bound and happen once per run.
Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.core.config import load_config  # noqa: E402
from pipelines.core.loader import load_transformations  # noqa: E402
from pipelines.core.plan import build_plan  # noqa: E402

LAYERS = ("bronze", "silver", "gold")


def generate(root: Path, count: int, seed: int = 7) -> Path:
    """A layered DAG: 10% bronze (file sources), 60% silver, 30% gold; 1-3 upstream tables each."""
    rng = random.Random(seed)
    lines = ["pipeline: {name: scale, schema: scale, transformations: ./transformations}", "tables:"]
    by_layer: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for index in range(count):
        layer = "bronze" if index < count // 10 else "silver" if index < count * 7 // 10 else "gold"
        name = f"{layer}_{index:05d}"
        candidates = by_layer["bronze"] + by_layer["silver"] + (by_layer["gold"] if layer == "gold" else [])
        deps = [] if layer == "bronze" else rng.sample(candidates, k=min(len(candidates), rng.randint(1, 3)))
        tags = ["daily", layer] + (["critical"] if index % 7 == 0 else [])
        entry = f"  - name: {name}\n    layer: {layer}\n    tags: [{', '.join(tags)}]\n"
        if deps:
            entry += f"    depends_on: [{', '.join(deps)}]\n"
        else:
            entry += f"    source: {{type: files, format: json, path: ./landing/{name}}}\n"
        lines.append(entry.rstrip("\n"))
        params = ", ".join(deps) if deps else "source"
        module = root / "transformations" / layer / f"{name}.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(f"def {name}({params}):\n    return {deps[0] if deps else 'source'}\n")
        by_layer[layer].append(name)
    (root / "config.yml").write_text("\n".join(lines) + "\n")
    return root / "config.yml"


def validate_and_plan(path: Path) -> float:
    started = time.perf_counter()
    config = load_config(path)
    plan = build_plan(config)
    elapsed = time.perf_counter() - started
    assert len(plan.order) == len(config.tables)
    return elapsed


def load_modules(path: Path) -> float:
    config = load_config(path)
    started = time.perf_counter()
    load_transformations(config, config.tables)
    return time.perf_counter() - started


def dry_run_process(path: Path) -> float:
    """`ldp_engine --dry-run` as a whole process (interpreter start, imports, modules, static checks)."""
    (path.parent / "landing").mkdir(exist_ok=True)
    for line in path.read_text().splitlines():  # the bronze tables' landing folders must exist
        if "path: ./landing/" in line:
            (path.parent / line.split("path: ")[1].rstrip("}")).mkdir(exist_ok=True)
    engine = str(Path(sys.executable).with_name("ldp_engine"))
    started = time.perf_counter()
    done = subprocess.run([engine, "--dry-run", "--format", "json"], cwd=path.parent, capture_output=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--process-repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {size: generate(Path(tmp) / str(size), size) for size in sizes}
        # Interleave the sizes so both see the same process state; min = cost without interference.
        plan_times: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(args.repeats):
            for size in sizes:
                plan_times[size].append(validate_and_plan(paths[size]))
        for size in sizes:
            process = [dry_run_process(paths[size]) for _ in range(args.process_repeats)]
            results[size] = {"validate_plan_s": round(min(plan_times[size]), 4),
                             "validate_plan_median_s": round(statistics.median(plan_times[size]), 4),
                             "modules_s": round(load_modules(paths[size]), 4),
                             "dry_run_process_min_s": round(min(process), 3),
                             "dry_run_process_median_s": round(statistics.median(process), 3)}
            print(f"{size:>6} tables: validate+plan {results[size]['validate_plan_s']:.3f}s "
                  f"(median {results[size]['validate_plan_median_s']:.3f}s), "
                  f"import+check modules {results[size]['modules_s']:.3f}s, "
                  f"whole --dry-run process {min(process):.2f}s (median {statistics.median(process):.2f}s)")
    small, large = results[sizes[0]], results[sizes[-1]]
    ratio = large["validate_plan_s"] / small["validate_plan_s"]
    print(json.dumps({
        "bench": "plan_scale", "ratio": round(ratio, 2),
        "baseline": f"{sizes[0]} tables", "sizes": {str(k): v for k, v in results.items()},
        "modules_ratio": round(large["modules_s"] / small["modules_s"], 2),
        "target": "10,000 tables validate+plan < 1 s; ratio <= 12; a whole --dry-run process < 5 s (median)",
        "ok": large["validate_plan_s"] < 1.0 and ratio <= 12 and large["dry_run_process_median_s"] < 5.0}))


if __name__ == "__main__":
    main()
