"""What every `ldp_engine` command shares: the error handler that maps exceptions to exit codes, and
how the common options are read (they are declared in `params`)."""
from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from pipelines.core.errors import EXIT_CONFIG, EXIT_RUNTIME, EngineError

from .params import VARIABLES
from .project import default_config

if TYPE_CHECKING:
    from pipelines.core.config import Config
    from pipelines.core.variables import Overrides

log = logging.getLogger("ldp_engine")
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT


def config_path(value: str | None) -> Path:
    return Path(value) if value else default_config()


def overrides() -> "Overrides":
    """This command's --var and --var-file values (a malformed one is a usage error)."""
    from pipelines.core.variables import Overrides

    given = click.get_current_context().meta.get(VARIABLES, {})
    return Overrides.parse(tuple(given.get("var") or ()), given.get("var_file"))


def read_config(value: str | None) -> "Config":
    """The command's config.yml (`--config`), its variables resolved with --var and --var-file."""
    from pipelines.core.config import load_config

    return load_config(config_path(value), overrides())


def handle_errors(command: Callable[..., int]) -> Callable[..., None]:
    """Map the engine's exceptions to exit codes and readable messages. With `--format json`, stdout
    carries exactly one JSON object on every path: the command's own, or `{"status", "errors"}`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        verbose = kwargs.get("verbose", False)
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        as_json = kwargs.get("output_format") == "json"

        def fail(code: int, status: str, errors: list[str], message: str) -> int:
            if as_json:
                click.echo(json.dumps({"status": status, "errors": errors}))
            click.echo(f"error: {message}", err=True)
            return code

        try:
            code = command(*args, **kwargs)
        except EngineError as exc:
            if verbose:
                log.exception("error")
            code = fail(exc.exit_code, "invalid" if exc.exit_code == EXIT_CONFIG else "error",
                        [p.render() for p in exc.problems], exc.render())
        except KeyboardInterrupt:
            code = fail(EXIT_INTERRUPTED, "interrupted", ["interrupted"], "interrupted")
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is a run-time failure
            if verbose:
                log.exception("unexpected error")
            text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            code = fail(EXIT_RUNTIME, "error", [text],
                        text + ("" if verbose else " (run with --verbose for details)"))
        sys.exit(code)

    return wrapper


def selection(tags: str | None, match: str, select_: str | None, exclude: str | None) -> Any:
    from pipelines.core.graph import Selection, split_names

    return Selection(tags=split_names(tags), match=match, select=split_names(select_),  # type: ignore[arg-type]
                     exclude=split_names(exclude))
