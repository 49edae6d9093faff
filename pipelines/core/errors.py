"""One exception family for everything a user can get wrong, mapped to the CLI's exit codes.

Errors are values with context: each :class:`Problem` names the file, table, key and value at
fault, so the CLI can print them without a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3


@dataclass(frozen=True)
class Problem:
    """A single thing wrong with the user's input."""

    message: str
    file: str | None = None
    table: str | None = None
    key: str | None = None
    value: Any = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    index: int | None = field(default=None, compare=False, repr=False)  # table position, for line lookup

    def render(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        parts = [p for p in (where, f"table '{self.table}'" if self.table else "",
                             f"key '{self.key}'" if self.key else "") if p]
        text = (", ".join(parts) + ": " if parts else "") + self.message
        if self.value is not None and repr(self.value) not in self.message:
            text += f" (got {self.value!r})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class EngineError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = EXIT_RUNTIME

    def __init__(self, problems: Problem | str | Iterable[Problem]):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].render()
        lines = [f"{len(self.problems)} problems found:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class ConfigError(EngineError):
    """config.yml, a transformation module or the selection is invalid (exit 1)."""

    exit_code = EXIT_CONFIG


class UsageError(EngineError):
    """The command line is malformed (exit 2)."""

    exit_code = EXIT_USAGE


class RunError(EngineError):
    """A table failed while running (exit 3)."""

    exit_code = EXIT_RUNTIME


def describe_error(exc: BaseException) -> str:
    """One readable line for a failure: the engine's own errors as they render, anything else as its
    type and message, without a JVM stack trace (the first line only when the message is long)."""
    if isinstance(exc, EngineError):
        return exc.render()
    text = str(exc).strip().split("JVM stacktrace")[0].strip()
    lines = text.splitlines()
    message = lines[0] if len(text) > 500 and lines else text
    return f"{type(exc).__name__}: {message}"
