"""Integration tests against the deployed staging target, through the SDK (GitHub Actions staging.yml
runs them after `databricks bundle deploy -t staging`). They need a workspace: without
DATABRICKS_HOST and the service principal's credentials they are skipped, saying so."""
from __future__ import annotations

import os

import pytest

CREDENTIALS = ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET")
pytestmark = pytest.mark.skipif(
    not all(os.environ.get(name) for name in CREDENTIALS),
    reason="no Databricks workspace credentials (DATABRICKS_HOST, DATABRICKS_CLIENT_ID, "
           "DATABRICKS_CLIENT_SECRET): staging tests run in GitHub Actions after the staging deploy")
TARGET = os.environ.get("LDP_STAGING_TARGET", "staging")


@pytest.fixture(scope="module")
def workspace():
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def deployed_job(workspace):
    jobs = list(workspace.jobs.list(name=f"ldp_daily_{TARGET}"))
    assert len(jobs) == 1, f"expected one job ldp_daily_{TARGET}, found {len(jobs)}"
    return jobs[0]


def test_the_job_passes_tags_and_mode_to_the_wheel(workspace):
    job = workspace.jobs.get(deployed_job(workspace).job_id)
    parameters = {p.name: p.default for p in job.settings.parameters}
    assert set(parameters) == {"tags", "mode"}
    task = job.settings.tasks[0].python_wheel_task
    assert (task.package_name, task.entry_point) == ("databricks_etl_framework", "ldp_engine")
    assert task.parameters[:4] == ["--tags", "{{job.parameters.tags}}", "--mode", "{{job.parameters.mode}}"]


def test_a_run_of_the_daily_job_succeeds(workspace):
    from datetime import timedelta

    from databricks.sdk.service.jobs import RunResultState

    run = workspace.jobs.run_now_and_wait(deployed_job(workspace).job_id, timeout=timedelta(minutes=60))
    assert run.state.result_state == RunResultState.SUCCESS, run.state.state_message


def test_a_mode_the_pipeline_is_not_deployed_with_fails_the_run(workspace):
    from datetime import timedelta

    from databricks.sdk.service.jobs import RunResultState

    job = workspace.jobs.get(deployed_job(workspace).job_id)
    deployed = {p.name: p.default for p in job.settings.parameters}["mode"]
    other = "streaming" if deployed == "batch" else "batch"
    waiter = workspace.jobs.run_now(job.job_id, job_parameters={"mode": other})
    run = waiter.result(timeout=timedelta(minutes=30))
    assert run.state.result_state == RunResultState.FAILED
