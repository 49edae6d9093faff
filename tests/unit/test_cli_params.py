"""Each shared `ldp_engine` option is declared once (engine/params.py) and so is the same on every command."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import click
from click.testing import CliRunner

from pipelines.engine import params
from pipelines.engine.cli import cli

ENGINE = Path(params.__file__).parent
SHARED = ("--config", "--verbose", "--wait", "--format", "--state-dir", "--tags", "--match", "--select",
          "--exclude", "--catalog", "--schema", "--run-id")
PER_COMMAND = {"--table", "--version", "--limit", "--output"}  # a table / version / count / file of different things per command


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    found: dict[tuple[str, ...], click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, (*path, name)))
        else:
            found[(*path, name)] = command
    return found


def options_by_flag() -> dict[str, dict[tuple[str, ...], dict]]:
    seen: dict[str, dict[tuple[str, ...], dict]] = defaultdict(dict)
    for path, command in commands().items():
        for param in command.params:
            if isinstance(param, click.Option):
                seen[param.opts[0]][path] = param.to_info_dict()
    return seen


def test_an_option_on_several_commands_is_the_same_option_on_each():
    several = {flag: found for flag, found in options_by_flag().items() if len(found) > 1}
    assert {"--catalog", "--schema", "--run-id", "--state-dir", "--config"} <= set(several)
    for flag, found in several.items():
        if flag in PER_COMMAND:
            continue
        if flag == "--format":  # graph draws mermaid|dot; the rest print text|json, with one help text
            found = {path: info for path, info in found.items() if path != ("graph",)}
        first, *rest = found.values()
        assert all(info == first for info in rest), (flag, found)


def test_shared_options_are_declared_only_in_params():
    for source in [ENGINE / "cli.py", *ENGINE.glob("*_cli.py"), ENGINE / "options.py"]:
        text = source.read_text(encoding="utf-8")
        declared = re.findall(r"click\.option\(\s*\"(--[a-z-]+)\"", text)
        assert not set(declared) & set(SHARED), (source.name, declared)
    text = (ENGINE / "params.py").read_text(encoding="utf-8")
    for flag in SHARED:
        assert len(re.findall(rf"click\.option\(\s*\"{flag}\"", text)) == 1, flag


def test_run_and_sinks_publish_take_the_same_target_and_run_id():
    found = options_by_flag()
    for flag in ("--catalog", "--schema", "--run-id"):
        assert found[flag][("run",)] == found[flag][("sinks", "publish")]
    assert found["--run-id"][("run",)]["envvar"] == "LDP_RUN_ID"
    assert found["--catalog"][("run",)] == found["--catalog"][("monitors", "plan")]


def test_stack_keeps_the_order_given_in_help():
    @click.command()
    @params.stack(params.schema, params.catalog, params.verbose)
    def command(schema: str | None, catalog: str | None, verbose: bool) -> None:
        """A command."""

    text = CliRunner().invoke(command, ["--help"]).output
    assert text.index("--schema") < text.index("--catalog") < text.index("--verbose")
