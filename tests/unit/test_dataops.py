"""The DataOps files, proven offline with their authors' own tools: actionlint (+ shellcheck) for the
workflows, go-task and its schema for the Taskfile, release-please's schemas and version logic for
the release files, jq for the Teams notification. Each check also fails on a broken copy."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml_rs

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = REPO / ".github" / "workflows"
RELEASE_PLEASE = "release-please@17.9.0"  # later versions need Node >= 22


def run(*args: Any, cwd: Path = REPO, env: dict[str, str] | None = None, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="session")
def release_please() -> Path:
    """release-please from npm, installed once under .tools/ (git-ignored). Each test worker has its own
    session: a file lock keeps a second worker from installing into the same folder at the same time
    (npm then fails, or the other worker finds a half-installed package)."""
    from filelock import FileLock

    prefix = REPO / ".tools" / "node"
    package = prefix / "node_modules" / "release-please"
    prefix.mkdir(parents=True, exist_ok=True)
    with FileLock(str(prefix.parent / "node.install.lock"), timeout=600):
        if not (package / "schemas" / "config.json").is_file():
            if not shutil.which("npm"):
                pytest.skip("npm is not installed: release-please (npm) cannot be installed to check the release files")
            result = run("npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", prefix, RELEASE_PLEASE)
            assert result.returncode == 0, result.stderr[-2000:]
    return package


@pytest.fixture(scope="session")
def jq() -> str:
    """Debian's jq, installed when missing and possible (root with apt-get)."""
    if not shutil.which("jq") and shutil.which("apt-get") and os.geteuid() == 0:
        run("apt-get", "install", "-y", "-q", "jq")
    if not shutil.which("jq"):
        pytest.skip("jq is not installed and cannot be (apt-get needs root): db_notify.sh needs it")
    return str(shutil.which("jq"))


def workflow(name: str, root: Path = WORKFLOWS) -> dict[str, Any]:
    return yaml_rs.loads((root / name).read_text(encoding="utf-8"))  # YAML 1.2: `on` stays a string key


# -- GitHub Actions ---------------------------------------------------------------------------

def actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "actionlint", "-shellcheck", BIN / "shellcheck", "-no-color", cwd=repo)


def test_actionlint_and_shellcheck_pass_on_the_workflows():
    result = actionlint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old, new, finding", [
    ("uses: actions/checkout@v6", "uses: actions/checkout@v4", "checkout@v4"),  # a node20 action
    ("run: scripts/db_notify.sh", "run: echo \"${{ github.event.head_commit.message }}\"", "untrusted"),
    ("needs: deploy\n    runs-on", "needs: deplo\n    runs-on", "deplo"),
])
def test_actionlint_fails_on_a_broken_workflow(tmp_path, old, new, finding):
    run("git", "init", "-q", cwd=tmp_path)
    shutil.copytree(WORKFLOWS, tmp_path / ".github" / "workflows")
    staging = tmp_path / ".github" / "workflows" / "staging.yml"
    assert old in staging.read_text()
    staging.write_text(staging.read_text().replace(old, new, 1))
    result = actionlint(tmp_path)
    assert result.returncode == 1 and finding in result.stdout, result.stdout


NODE24 = {"actions/checkout": 6, "actions/setup-python": 6, "actions/setup-java": 5, "actions/github-script": 8,
          "googleapis/release-please-action": 5}  # the first major of each that runs on node24


def flow_problems(root: Path) -> list[str]:
    """The triggers and job graph the DataOps flow relies on (README "Deploy")."""
    problems = []
    ci, staging = workflow("ci.yml", root), workflow("staging.yml", root)
    if "pull_request" not in ci["on"] or ci["on"].get("push", {}).get("branches-ignore") != ["main"]:
        problems.append("ci.yml must run on pull requests and on pushes to branches other than main")
    if not any("Conventional Commit" in (s.get("name") or "") for s in ci["jobs"]["pr-title"]["steps"]):
        problems.append("ci.yml must check the pull request title")
    if staging["on"] != {"push": {"branches": ["main"]}} or staging["jobs"]["integration"]["needs"] != "deploy":
        problems.append("staging.yml: push to main, deploy, then integration tests")
    for name in ("staging.yml", "production.yml"):
        steps = [s.get("run", "") for s in workflow(name, root)["jobs"]["deploy"]["steps"]]
        gate = [i for i, run in enumerate(steps) if "scripts/plan_gate.sh " in run]
        deploy_at = [i for i, run in enumerate(steps) if "bundle deploy" in run]
        if not gate or not deploy_at or gate[0] > deploy_at[0]:
            problems.append(f"{name}: the deploy job must run scripts/plan_gate.sh before bundle deploy")
    release = workflow("release-please.yml", root)
    deploy = release["jobs"].get("production", {})
    if deploy.get("uses") != "./.github/workflows/production.yml" or "release_created" not in deploy.get("if", ""):
        problems.append("release-please.yml must call the production deployment when it creates a release")
    production = workflow("production.yml", root)
    if "workflow_call" not in production["on"] or production["on"].get("release") != {"types": ["published"]}:
        problems.append("production.yml must be reusable (workflow_call) and run on release: published")
    fast = workflow("fast-track.yml", root)
    condition = fast["jobs"]["merge"].get("if", "")
    for needed in ("github.event.issue.pull_request", "'/release'", "author_association", '"MEMBER"', '"OWNER"'):
        if needed not in condition:
            problems.append(f"fast-track.yml: the merge job's if must check {needed}")
    if fast["on"] != {"issue_comment": {"types": ["created"]}}:
        problems.append("fast-track.yml must run on new issue comments")
    if fast["jobs"]["production"].get("uses") != "./.github/workflows/production.yml" or \
            fast["jobs"]["production"].get("needs") != "merge":
        problems.append("fast-track.yml must deploy production after the merge through the reusable workflow")
    if "always()" not in fast["jobs"]["report"].get("if", ""):
        problems.append("fast-track.yml must report the outcome whatever it was")
    for path in sorted(root.glob("*.yml")):
        for job_name, job in workflow(path.name, root)["jobs"].items():
            for step in job.get("steps", []):
                if "${{ github.event." in step.get("run", ""):
                    problems.append(f"{path.name}: job {job_name} interpolates github.event in run: (use env:)")
                action, _, ref = step.get("uses", "").partition("@")
                if action in NODE24 and not (ref.startswith("v") and ref[1:].split(".")[0].isdigit()
                                             and int(ref[1:].split(".")[0]) >= NODE24[action]):
                    problems.append(f"{path.name}: {action}@{ref} predates its node24 release v{NODE24[action]}")
    return problems


def test_the_workflows_have_the_triggers_and_job_graph_of_the_flow():
    assert flow_problems(WORKFLOWS) == []


@pytest.mark.parametrize("name, old, new", [
    ("fast-track.yml", " &&\n      contains(fromJSON('[\"MEMBER\", \"OWNER\"]'), github.event.comment.author_association)", ""),
    ("fast-track.yml", "startsWith(github.event.comment.body, '/release')", "true"),
    ("release-please.yml", "    if: needs.release-please.outputs.release_created == 'true'\n", ""),
    ("production.yml", "  release:\n    types: [published]\n", ""),
    ("staging.yml", "run: .venv/bin/python -m pytest tests/staging -v -rs",
     "run: echo ${{ github.event.head_commit.message }}"),
    ("release-please.yml", "googleapis/release-please-action@v5", "googleapis/release-please-action@v4"),
])
def test_a_workflow_that_breaks_the_flow_is_caught(tmp_path, name, old, new):
    shutil.copytree(WORKFLOWS, tmp_path, dirs_exist_ok=True)
    text = (tmp_path / name).read_text()
    assert old in text
    (tmp_path / name).write_text(text.replace(old, new, 1))
    assert flow_problems(tmp_path)


# -- Taskfile ---------------------------------------------------------------------------------

TASKS = {"setup", "lint", "test:unit", "test", "bundle:validate", "db-deploy:sandbox", "db-deploy:staging",
         "db-deploy:prod", "release:notify"}


def test_the_taskfile_passes_its_schema_and_lists_every_task_with_a_description(tmp_path):
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.taskfile", REPO / "Taskfile.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(run(BIN / "task", "--list-all", "--json").stdout)["tasks"]
    assert TASKS <= {t["name"] for t in listed}
    assert all(t["desc"] for t in listed if t["name"] in TASKS)
    broken = tmp_path / "Taskfile.yml"
    broken.write_text((REPO / "Taskfile.yml").read_text().replace("    cmds:\n", "    commands:\n", 1))
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.taskfile", broken)
    assert result.returncode == 1, result.stdout


def test_deploying_prod_runs_the_bundle_deploy_as_the_service_principal():
    result = run(BIN / "task", "--dry", "db-deploy:prod", "SP_ID=0000-sp")
    assert result.returncode == 0 and "databricks bundle deploy -t prod --var sp_id=0000-sp" in result.stderr
    missing = run(BIN / "task", "--dry", "db-deploy:prod")
    assert missing.returncode != 0 and "SP_ID" in missing.stderr


# -- releases ---------------------------------------------------------------------------------

def test_the_release_files_pass_release_pleases_own_schemas(release_please, tmp_path):
    schemas = release_please / "schemas"
    for name, schema in ((REPO / "release-please-config.json", "config.json"),
                         (REPO / ".release-please-manifest.json", "manifest.json")):
        result = run(BIN / "check-jsonschema", "--schemafile", schemas / schema, name)
        assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "config.json"
    broken.write_text((REPO / "release-please-config.json").read_text().replace('"packages": {', '"packages": [{', 1)
                      .replace("\n  }\n}", "\n  }]\n}"))
    assert run(BIN / "check-jsonschema", "--schemafile", schemas / "config.json", broken).returncode == 1


def test_the_release_type_is_one_release_please_knows_and_the_version_is_single_sourced(release_please):
    config = json.loads((REPO / "release-please-config.json").read_text())
    types = run("node", "-e", f"console.log(JSON.stringify(require('{release_please}/build/src/factory')"
                              ".getReleaserTypes()))")
    known = json.loads(types.stdout)
    assert config["release-type"] in known and "pythn" not in known
    manifest = json.loads((REPO / ".release-please-manifest.json").read_text())["."]
    setup = re.search(r'version="([^"]+)"', (REPO / "setup.py").read_text()).group(1)
    import pipelines

    reported = run(BIN / "ldp_engine", "--version").stdout
    assert manifest == setup == pipelines.__version__ and setup in reported


@pytest.mark.parametrize("messages, expected", [
    (["fix: a bug"], "0.1.1"), (["feat: a table sink"], "0.2.0"), (["docs: words", "fix: a bug"], "0.1.1"),
    (["feat!: a new config format"], "1.0.0"), (["fix: x\n\nBREAKING CHANGE: removed --runner spark"], "1.0.0"),
])
def test_conventional_commits_bump_the_version_as_documented(release_please, messages, expected):
    result = run("node", REPO / "tests/unit/js/release_bump.js", release_please,
                 REPO / "release-please-config.json", "0.1.0", json.dumps(messages))
    assert result.stdout.strip() == expected, result.stderr


# -- Teams notification -----------------------------------------------------------------------

NOTIFY = REPO / "scripts" / "db_notify.sh"
HOSTILE = 'it said "done" \\n\n$(rm -rf /) `id` \'quoted\' {"json": [1]} ünïcödé <b>&amp;</b>'


def notify(env: dict[str, str], path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = os.environ["PATH"] if path_prefix is None else f"{path_prefix}:{os.environ['PATH']}"
    base = {"PATH": path, "BUNDLE_NAME": "databricks_etl_framework", "ENVIRONMENT": "prod", "VERSION": "1.2.3",
            "STATUS": "failed", "RUN_URL": "https://github.com/o/r/actions/runs/1"}
    return run("bash", NOTIFY, env={**base, **env})


def test_the_dry_run_payload_is_a_teams_adaptive_card_and_hostile_text_round_trips(jq):
    result = notify({"DRY_RUN": "1", "MESSAGE": HOSTILE})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["type"] == "message"
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["$schema"].startswith("http://adaptivecards.io/")
    assert card["body"][-1]["text"] == HOSTILE
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {"Bundle": "databricks_etl_framework", "Environment": "prod", "Version": "1.2.3",
                     "Status": "failed"}
    assert card["actions"][0]["url"] == "https://github.com/o/r/actions/runs/1"


def fake_curl(folder: Path, exit_code: int) -> Path:
    """A `curl` that stores its stdin body and arguments, then exits with `exit_code`."""
    folder.mkdir()
    script = folder / "curl"
    script.write_text(f'#!/usr/bin/env bash\ncat > "{folder}/body"\nprintf "%s\\n" "$@" > "{folder}/args"\n'
                      f"exit {exit_code}\n")
    script.chmod(0o755)
    return folder


def test_the_webhook_receives_the_card_and_a_failed_post_fails_the_script(jq, tmp_path):
    sent = fake_curl(tmp_path / "ok", 0)
    result = notify({"TEAMS_WEBHOOK_URL": "https://example.webhook.office.com/x", "MESSAGE": HOSTILE}, sent)
    assert result.returncode == 0, result.stderr
    assert json.loads((sent / "body").read_text())["attachments"][0]["content"]["body"][-1]["text"] == HOSTILE
    assert "https://example.webhook.office.com/x" in (sent / "args").read_text().splitlines()
    assert "example.webhook" not in result.stdout + result.stderr  # the webhook is a secret
    failing = fake_curl(tmp_path / "fail", 22)
    assert notify({"TEAMS_WEBHOOK_URL": "https://example.webhook.office.com/x"}, failing).returncode == 22
    assert notify({}).returncode == 2  # no webhook, no dry run


def test_the_notification_script_is_shellcheck_clean_and_a_careless_edit_is_not(tmp_path):
    assert run(BIN / "shellcheck", NOTIFY).returncode == 0
    careless = tmp_path / "db_notify.sh"
    careless.write_text(NOTIFY.read_text().replace('"$TEAMS_WEBHOOK_URL"', "$TEAMS_WEBHOOK_URL"))
    result = run(BIN / "shellcheck", careless)
    assert result.returncode == 1 and "SC2086" in result.stdout


def test_the_plan_gate_plans_against_the_targets_schema_and_pipeline(tmp_path, jq):
    """`databricks bundle summary` stands in for the workspace (what the CLI prints after a deploy); the
    engine's arguments are recorded; its exit code (4: destructive) is the gate's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    summary = {"variables": {"catalog": {"default": "main", "value": "staging"}, "schema": {"default": "retail"}},
               "resources": {"pipelines": {"ldp_pipeline": {"id": "p-42"}}}}
    (bin_dir / "databricks").write_text(f"#!/bin/sh\necho '{json.dumps(summary)}'\n")
    engine = bin_dir / "engine"
    engine.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\nexit 4\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(jq).parent}:/usr/bin:/bin", "LDP_ENGINE": str(engine)}
    gate = subprocess.run([str(REPO / "scripts" / "plan_gate.sh"), "staging"], env=env, capture_output=True, text=True)
    assert gate.returncode == 4, gate.stderr
    assert (tmp_path / "args").read_text().split() == [
        "plan", "--target", "databricks", "--catalog", "staging", "--schema", "retail", "--pipeline-id", "p-42",
        "--fail-on", "destructive"]
    assert run(BIN / "shellcheck", REPO / "scripts" / "plan_gate.sh").returncode == 0
