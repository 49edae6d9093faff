"""`ldp_engine run` is thin: the launch module picks the runner from one table and returns the RunResult."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipelines.core.errors import UsageError
from pipelines.core.graph import Selection
from pipelines.core.results import RunResult
from pipelines.engine import launch as launching
from pipelines.engine import params
from pipelines.engine.cli import cli, run

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config.yml"


@pytest.fixture
def fake_runners(monkeypatch, tmp_path):
    """Every runner replaced by one that records its launch and returns a failed run on `sdp`."""
    seen: list[launching.Launch] = []

    def start(launch: launching.Launch) -> launching.Launched:
        seen.append(launch)
        failed = ["boom"] if launch.options.runner == "sdp" else []
        result = RunResult(launch.options.runner, run_id="r-1", errors=failed)
        return launching.Launched(launch.project.plan, result, (("run_report", tmp_path / "report.html"),))

    for name, runner in launching.RUNNERS.items():
        monkeypatch.setitem(launching.RUNNERS, name, dataclasses.replace(runner, start=start))  # type: ignore[index]
    monkeypatch.setenv("LDP_STATE_DIR", str(tmp_path / "state"))
    return seen


def test_the_runner_table_is_the_runner_option():
    run_option = next(p for p in run.params if p.name == "runner")
    assert isinstance(run_option.type, click.Choice)
    assert tuple(run_option.type.choices) == params.RUNNER_NAMES == tuple(launching.RUNNERS)
    assert launching.RUNNERS["spark"].holds_state_lock and launching.RUNNERS["sdp"].holds_state_lock
    assert not launching.RUNNERS["pipeline"].holds_state_lock  # a Databricks update writes no local state


@pytest.mark.parametrize("runner, extra, code", [("spark", [], 0), ("sdp", [], 3),
                                                 ("pipeline", ["--pipeline-id", "p1"], 0)])
def test_the_launch_picks_the_named_runner_and_the_cli_prints_its_run(fake_runners, runner, extra, code):
    result = CliRunner().invoke(cli, ["--config", str(CONFIG), "--runner", runner, *extra, "--format", "json"])
    assert result.exit_code == code, result.output
    [launch] = fake_runners
    assert launch.options.runner == runner and json.loads(result.stdout)["runner"] == runner
    assert "run report: " in result.stderr and "report.html" in result.stderr


def test_every_run_option_reaches_the_launch_grouped(fake_runners):
    result = CliRunner().invoke(cli, ["--config", str(CONFIG), "--tags", "gold", "--match", "any", "--mode",
                                      "streaming", "--catalog", "main", "--schema", "s1", "--run-id", "r-9",
                                      "--max-parallel", "2", "--fail-fast", "--table-timeout", "5", "--wait", "1"])
    assert result.exit_code == 0, result.output
    options = fake_runners[0].options
    assert options == launching.RunOptions(
        CONFIG, Selection(tags=("gold",), match="any"), mode="streaming", catalog="main", schema="s1",
        run_id="r-9", max_parallel=2, fail_fast=True, table_timeout=5.0, wait=1.0, state_dir=None)
    assert fake_runners[0].project.plan.pipeline.schema_name == "s1"  # the overrides shaped the plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.runner = "sdp"  # type: ignore[misc]


def test_a_dry_run_plans_without_any_runner(fake_runners):
    launched = launching.launch(launching.RunOptions(CONFIG, runner="pipeline", pipeline_id="p1", dry_run=True))
    assert launched.run is None and launched.plan.tables and not fake_runners


def test_the_pipeline_runner_needs_its_id_before_anything_runs(fake_runners):
    with pytest.raises(UsageError, match="--pipeline-id"):
        launching.runner_for(launching.RunOptions(CONFIG, runner="pipeline"))
    result = CliRunner().invoke(cli, ["--config", str(CONFIG), "--runner", "pipeline"])
    assert result.exit_code == 2 and not fake_runners
