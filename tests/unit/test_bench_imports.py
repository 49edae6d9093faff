"""The benchmarks are run by hand, not by CI, so a refactor that moves a name they import breaks them
silently (bench/sink_throughput.py did, 2026-12-07). Importing each one (none runs on import) catches it."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "bench").glob("*.py") if p.stem != "__init__")


def test_every_benchmark_is_found():
    assert {"sink_throughput", "dq_overhead", "cdc_merge", "kafka_ingest"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_benchmark_imports_what_the_engine_still_has(name):
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "main", None)), f"bench/{name}.py has no main()"
