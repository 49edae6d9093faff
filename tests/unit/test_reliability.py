"""Reliability without Spark: unreadable config files, one JSON object on every exit, and one run per
state folder (a second run is told who holds it; a killed holder never blocks the folder)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.engine.options import EXIT_INTERRUPTED
from pipelines.engine.cli import cli
from pipelines.core.errors import EXIT_CONFIG, EXIT_RUNTIME
from pipelines.engine.state_lock import StateBusy, state_lock

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def unreadable_configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes("tables:\n  - name: caf\xe9\n    layer: bronze\n".encode("latin-1"))
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    folder = tmp_path / "folder.yml"
    folder.mkdir()
    return {"not utf-8": (latin1, "not UTF-8 text (byte 0xe9"), "empty": (empty, "top level must be a mapping"),
            "directory": (folder, "cannot read config file: Is a directory")}


@pytest.mark.parametrize("case", ["not utf-8", "empty", "directory"])
@pytest.mark.parametrize("command", [("validate",), ("run", "--dry-run")])
def test_config_files_that_cannot_be_read_exit_1_naming_file_and_reason(tmp_path, case, command):
    path, reason = unreadable_configs(tmp_path)[case]
    result = invoke(*command, "--config", str(path), "--format", "json")
    assert result.exit_code == EXIT_CONFIG, result.output
    [error] = json.loads(result.stdout)["errors"]
    assert str(path) in error and reason in error, error
    assert "Traceback" not in result.output


def test_unexpected_failures_and_interrupts_still_print_one_json_object(monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("something nobody expected\nsecond line")

    monkeypatch.setattr("pipelines.engine.project.load_project", boom)
    result = invoke("run", "--dry-run", "--format", "json", "--config", str(REPO / "config.yml"))
    assert result.exit_code == EXIT_RUNTIME
    assert json.loads(result.stdout) == {"status": "error", "errors": ["ValueError: something nobody expected"]}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pipelines.engine.project.load_project", interrupted)
    result = invoke("run", "--dry-run", "--format", "json", "--config", str(REPO / "config.yml"))
    assert result.exit_code == EXIT_INTERRUPTED
    assert json.loads(result.stdout) == {"status": "interrupted", "errors": ["interrupted"]}


def test_every_exit_path_prints_exactly_one_json_object(tmp_path):
    """Success, a config error, a usage error raised by the engine: stdout parses as one object."""
    broken = tmp_path / "broken.yml"
    broken.write_text("tables:\n  - name: a\n    layer: platinum\n")
    for args, code in [(("run", "--dry-run"), 0), (("validate",), 0),
                       (("run", "--dry-run", "--config", str(broken)), 1),
                       (("run", "--dry-run", "--runner", "pipeline", "--tags", "nope"), 1)]:
        full = [*args, "--format", "json"] + ([] if "--config" in args else ["--config", str(REPO / "config.yml")])
        result = invoke(*full)
        assert result.exit_code == code, (args, result.output)
        assert isinstance(json.loads(result.stdout), dict), result.stdout


HOLD = """
import sys, time
from pathlib import Path
from pipelines.engine.state_lock import state_lock
with state_lock(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


def hold_lock(state: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_run_on_a_held_state_folder_stops_at_once_naming_the_holder(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        started = time.perf_counter()
        with pytest.raises(StateBusy) as busy:
            with state_lock(tmp_path):
                pass
        assert time.perf_counter() - started < 2
        text = busy.value.render()
        assert str(tmp_path) in text and f"process {holder.pid}, started " in text
        assert "--wait SECONDS" in text and "--state-dir" in text

        started = time.perf_counter()
        with pytest.raises(StateBusy, match="after waiting 1 s"):
            with state_lock(tmp_path, wait=1):
                pass
        assert time.perf_counter() - started >= 1
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_never_blocks_the_folder(tmp_path):
    holder = hold_lock(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with state_lock(tmp_path, wait=0):  # taken over at once
        assert json.loads((tmp_path / "ldp.lock.json").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "ldp.lock.json").exists()


def test_the_cli_answers_a_busy_state_folder_with_exit_3_and_json(tmp_path):
    holder = hold_lock(tmp_path / "state")
    try:
        proc = subprocess.run([str(Path(sys.executable).with_name("ldp_engine")), "--config",
                               str(REPO / "config.yml"), "--state-dir", str(tmp_path / "state"),
                               "--format", "json"], capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == EXIT_RUNTIME, proc.stderr
    [error] = json.loads(proc.stdout)["errors"]
    assert f"in use by process {holder.pid}" in error
    assert "Traceback" not in proc.stderr and "HiveException" not in proc.stderr
