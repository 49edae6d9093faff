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
    task = next(t for t in spec["tasks"] if t["task_key"] == "ldp_engine")["python_wheel_task"]
    assert (task["package_name"], task["entry_point"]) == ("databricks_etl_framework", "ldp_engine")
    args = task["parameters"]
    assert args[args.index("--runner") + 1] == "pipeline"
    assert args[args.index("--pipeline-id") + 1] == "${resources.pipelines.ldp_pipeline.id}"
    assert "--tags" in args
    wheel = spec["environments"][0]["spec"]["dependencies"][0]
    assert (path.parent / wheel).parent.resolve() == REPO / "dist"


# -- the bundle per target, offline (tests/unit/bundle_checks.py) ---------------------------------

import shutil  # noqa: E402

import pytest  # noqa: E402

from . import bundle_checks as checks  # noqa: E402


def bundle_copy(tmp_path: Path) -> Path:
    shutil.copy2(REPO / "databricks.yml", tmp_path / "databricks.yml")
    for folder in ("targets", "workflows", "resources", "dashboards"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("target", sorted(checks.TARGETS))
def test_each_target_validates_against_the_cli_schema_and_the_typed_models(target):
    assert checks.schema_problems(checks.combined(REPO)) == []
    deployed = checks.for_target(REPO, target)
    assert checks.schema_problems(deployed) == []
    for spec in deployed["resources"]["jobs"].values():
        Job.from_dict(spec)
    for spec in deployed["resources"]["pipelines"].values():
        Pipeline.from_dict(spec)


def test_the_flow_rules_and_every_reference_hold():
    assert checks.flow_problems(REPO) == []
    assert checks.reference_problems(REPO) == []
    targets = checks.combined(REPO)["targets"]
    assert targets["prod"]["variables"]["schedule_pause_status"] == "UNPAUSED"
    assert targets["sandbox"]["variables"]["schedule_pause_status"] == "PAUSED"
    assert "${workspace.current_user.short_name}" in targets["sandbox"]["variables"]["schema"]


def test_the_job_passes_tags_and_mode_with_their_defaults_and_tells_failures():
    job = checks.for_target(REPO, "prod")["resources"]["jobs"]["ldp_daily"]
    land, update, sinks, tags, monitors = job["tasks"]
    args = update["python_wheel_task"]["parameters"]
    assert args[:4] == ["--tags", "{{job.parameters.tags}}", "--mode", "{{job.parameters.mode}}"]
    defaults = {p["name"]: p["default"] for p in job["parameters"]}
    variables = checks.combined(REPO)["variables"]
    assert defaults == {"tags": "${var.tags}", "mode": "${var.mode}"}
    assert (variables["tags"]["default"], variables["mode"]["default"]) == ("daily", "batch")
    pipeline = checks.combined(REPO)["resources"]["pipelines"]["ldp_pipeline"]
    assert pipeline["configuration"]["ldp.mode"] == "${var.mode}"  # the job's --mode is checked against it
    assert update["python_wheel_task"]["parameters"][4:6] == ["--runner", "pipeline"]
    # the incremental database reads land first; the update runs even if a database is down
    assert land["python_wheel_task"]["parameters"][:3] == ["land", "--tags", "{{job.parameters.tags}}"]
    assert (update["depends_on"], update["run_if"]) == ([{"task_key": "land"}], "ALL_DONE")
    for task in (sinks, tags, monitors):  # each after the pipeline update
        assert task["depends_on"] == [{"task_key": update["task_key"]}]
    assert monitors["python_wheel_task"]["parameters"][:6] == [
        "monitors", "apply", "--confirm", "--refresh", "--tags", "{{job.parameters.tags}}"]
    assert sinks["python_wheel_task"]["parameters"][:6] == [  # the mode tells which sinks the pipeline delivered
        "sinks", "publish", "--tags", "{{job.parameters.tags}}", "--mode", "{{job.parameters.mode}}"]
    assert tags["python_wheel_task"]["parameters"][:5] == [
        "tags", "apply", "--confirm", "--tags", "{{job.parameters.tags}}"]
    for task in (update, sinks):  # one run id: the sinks' inventory records and appended rows join the run's
        args = task["python_wheel_task"]["parameters"]
        assert args[args.index("--run-id") + 1] == "{{job.run_id}}"
    assert job["email_notifications"]["on_failure"] == ["${var.failure_email}"]
    assert job["webhook_notifications"]["on_failure"] == [{"id": "${var.teams_destination_id}"}]


BROKEN = {  # (file, old, new) -> the check that must report it
    "schema": [("workflows/daily_job.yml", "      schedule:\n", "      schedules:\n"),
               ("workflows/ldp_pipeline.yml", "      serverless: true\n", "      serverless: true\n      servreless: true\n"),
               ("targets/prod.yml", "        level: CAN_VIEW\n", "        level: CAN_LOOK\n")],
    "flow": [("targets/prod.yml", "    mode: production\n", "    mode: development\n"),
             ("targets/staging.yml", "  staging:\n", "  stage:\n"),
             ("targets/staging.yml", "    mode: production\n", "    mode: production\n    default: true\n"),
             ("targets/staging.yml", "      service_principal_name: ${var.sp_id}\n", "      user_name: someone@example.com\n"),
             ("targets/sandbox.yml", "/${bundle.git_branch}", "")],
    "references": [("workflows/daily_job.yml", "${var.failure_email}", "${var.failure_mail}"),
                   ("workflows/daily_job.yml", "${resources.pipelines.ldp_pipeline.id}",
                    "${resources.pipelines.ldp_pipe.id}"),
                   ("databricks.yml", "  - resources/*.yml\n", "  - resource/*.yml\n"),
                   ("resources/dashboards.yml", "../dashboards/pipeline_health.lvdash.json",
                    "dashboards/pipeline_health.lvdash.json"),
                   ("resources/dashboards.yml", "${resources.database_catalogs.ldp_inventory.name}",
                    "${resources.database_catalogs.inventory.name}")],
}


@pytest.mark.parametrize("check, file, old, new", [(c, *case) for c, cases in BROKEN.items() for case in cases])
def test_a_broken_bundle_fails_its_check(tmp_path, check, file, old, new):
    root = bundle_copy(tmp_path)
    edit(root / file, old, new)
    if check == "schema":
        problems = [p for target in checks.TARGETS for p in checks.schema_problems(checks.for_target(root, target))]
    elif check == "flow":
        problems = checks.flow_problems(root)
    else:
        problems = checks.reference_problems(root)
    assert problems, f"{file}: {old!r} -> {new!r} went unnoticed"
