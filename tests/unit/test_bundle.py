"""The Databricks Asset Bundle, checked offline: typed resource models, variables, paths, wiring."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from databricks.bundles.jobs import Job
from databricks.bundles.pipelines import Pipeline

REPO = Path(__file__).resolve().parents[2]


def bundle() -> dict[Path, dict]:
    root = yaml.safe_load((REPO / "databricks.yml").read_text())
    files = {REPO / "databricks.yml": root}
    for pattern in root["include"]:
        files.update({path: yaml.safe_load(path.read_text()) for path in sorted(REPO.glob(pattern))})
    return files


def resources(kind: str) -> dict[str, tuple[Path, dict]]:
    return {name: (path, spec) for path, doc in bundle().items()
            for name, spec in (doc.get("resources", {}).get(kind) or {}).items()}


def test_resources_match_the_typed_bundle_models():
    pipelines, jobs = resources("pipelines"), resources("jobs")
    assert set(pipelines) == {"ldp_pipeline"} and set(jobs) == {"ldp_daily"}
    for _, spec in pipelines.values():
        Pipeline.from_dict(spec)
    for _, spec in jobs.values():
        Job.from_dict(spec)


def test_every_variable_used_is_declared_and_artifacts_are_artifacts():
    root = yaml.safe_load((REPO / "databricks.yml").read_text())
    declared = set(root["variables"])
    used = {m for path in bundle() for m in re.findall(r"\$\{var\.(\w+)\}", path.read_text())}
    assert used <= declared, used - declared
    assert all(set(a) <= {"type", "build", "path", "files"} for a in root["artifacts"].values())


def test_pipeline_defines_every_table_from_the_wheels_entry_source():
    path, spec = resources("pipelines")["ldp_pipeline"]
    library = spec["libraries"][0]["file"]["path"]
    assert (path.parent / library).resolve() == REPO / "pipelines/ldp_pipeline.py"
    assert spec["configuration"]["ldp.config"].endswith("/config.yml")
    assert {"ldp.mode", "ldp.tags"} <= set(spec["configuration"])
    assert (path.parent / spec["environment"]["dependencies"][0]).parent.resolve() == REPO / "dist"


def test_job_starts_an_update_of_the_bundles_pipeline_with_the_wheel():
    path, spec = resources("jobs")["ldp_daily"]
    task = spec["tasks"][0]["python_wheel_task"]
    assert (task["package_name"], task["entry_point"]) == ("databricks_etl_framework", "ldp_engine")
    args = task["parameters"]
    assert args[args.index("--runner") + 1] == "pipeline"
    assert args[args.index("--pipeline-id") + 1] == "${resources.pipelines.ldp_pipeline.id}"
    assert "--tags" in args
    wheel = spec["environments"][0]["spec"]["dependencies"][0]
    assert (path.parent / wheel).parent.resolve() == REPO / "dist"
