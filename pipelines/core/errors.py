"""One exception family for everything a user can get wrong, mapped to the CLI's exit codes.

Errors are values with context: each :class:`Problem` names the file, table, key and value at
fault, so the CLI can print them without a traceback.
"""
from __future__ import annotations

import inspect
import os
import re
import traceback
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3
EXIT_DESTRUCTIVE = 4  # `plan --fail-on destructive` found a drop or a breaking schema change


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


def describe_error(exc: BaseException, user_files: Collection[str] = ()) -> str:
    """One readable line for a failure: the engine's own errors as they render, anything else as its
    root cause (`error_cause`) and, when one of `user_files` (the transformation's module) is where it
    came from, ` (at file:line)`, so every consumer of the text (summary, run record, report,
    inventory) shows the user's line without a schema of its own."""
    if isinstance(exc, EngineError):
        return exc.render()
    where = user_location(exc, user_files)
    return error_cause(exc) + (f" (at {where})" if where else "")


def error_cause(exc: BaseException) -> str:
    """The failure without a stack: `Type: first line`, the JVM exception's class when Spark raised
    it, and the first line of each `Caused by`. A Py4J error's own first line ("An error occurred
    while calling o57.load.") says nothing, so the Java exception's first line replaces it. Secrets
    that a message may echo (passwords, tokens, credentials in URLs) are masked."""
    text = _message(exc).strip().split("JVM stacktrace")[0].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    java = _java_exception(exc)
    worker = _worker_exception(text)
    if lines and lines[0].startswith(_PY4J_CALL) and len(lines) > 1 and lines[1].startswith(": "):
        head = lines[1][2:]
    elif worker:  # a UDF failed on a Python worker: its own exception, not "an exception was thrown"
        head = f"{type(exc).__name__}: {worker}"
    elif java is not None or _condition(exc):
        head = f"{type(exc).__name__}: {_first_sentence(lines).rstrip(';')}"
    else:  # a Python error: its whole message unless it is long
        head = f"{type(exc).__name__}: {lines[0] if len(text) > 500 and lines else text}"
    jvm_class = _call(java, "getClass", "getName") if java is not None else None
    if jvm_class and jvm_class not in head:
        head += f" [{jvm_class}]"
    for cause in _causes(text, java, exc):
        name, _, message = cause.partition(": ")
        if message and message[:100] in head:  # the message already told (a wrapper repeats its cause)
            cause = name
        if cause not in head:
            head += f"; caused by: {cause}"
    return redact(head)


def _first_sentence(lines: list[str], most: int = 4) -> str:
    """The message's first line, continued while it breaks mid-sentence (Delta wraps its messages:
    "... as change data was not" / "recorded for version [0]."), at most `most` lines."""
    taken = lines[:1]
    for line in lines[1:most]:
        if taken[-1].endswith((".", ";", ":", "!", "?")) or not line[:1].islower():
            break
        taken.append(line)
    return " ".join(taken)


def user_location(exc: BaseException, user_files: Collection[str]) -> str | None:
    """`file:line` in one of `user_files` where `exc` came from: the call site Spark recorded in its
    query context (a lazy error raised at the write names the DataFrame call that built the failing
    expression), else the innermost traceback frame in such a file (an exception raised, or a Spark
    error raised eagerly, by the transformation)."""
    files = {os.path.normpath(f) for f in user_files if f}
    if not files:
        return None
    for site in _call_sites(exc):
        path, _, line = site.rpartition(":")
        if line.isdigit() and os.path.normpath(path) in files:
            return site
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.normpath(f.filename) in files]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    relayed = [f"{path}:{line}" for path, line in _RELAYED_FRAME.findall(_message(exc))  # a Python worker's
               if os.path.normpath(path) in files]                                       # traceback, relayed
    return relayed[-1] if relayed else None


def code_file(function: object) -> str | None:
    """The file a (possibly decorated) function's code was defined in."""
    code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
    return code.co_filename if code else None


def redact(text: str) -> str:
    """Mask secrets an error message may carry (`password=...`, `token: ...`, `user:pass@host`)."""
    return _URL_CREDENTIALS.sub(r"\1***@", _SECRET_VALUE.sub(r"\1\2***", text))


_PY4J_CALL = "An error occurred while calling "
_TRACEBACK = "Traceback (most recent call last):"
_RELAYED_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_CAUSED_BY = "Caused by: "
_MAX_CAUSES = 8
_SECRET_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key)(\s*[=:]\s*)"
                           r"([^\s,;&'\"]+)")
_URL_CREDENTIALS = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")


def _message(exc: BaseException) -> str:
    """`str(exc)`, which for PySpark's captured errors asks the JVM; its arguments if that fails."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - e.g. the JVM is gone: describe what Python still holds
        return " ".join(str(arg) for arg in exc.args)


def _worker_exception(text: str) -> str | None:
    """The exception line ending a Python traceback relayed in a message (PySpark's PythonException
    carries the worker's), e.g. `ValueError: bad value 10`; None without one."""
    raw = text.splitlines()
    starts = [index for index, line in enumerate(raw) if line.rstrip().endswith(_TRACEBACK)]
    if not starts:
        return None
    ending = [line.strip() for line in raw[starts[-1] + 1:] if line.strip() and not line[:1].isspace()]
    return ending[0] if ending else None


def _java_exception(exc: BaseException) -> Any:
    """The JVM exception behind a Spark error (Py4J's `java_exception`, PySpark's captured `_origin`),
    duck-typed: this module does not import pyspark."""
    return getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)


def _condition(exc: BaseException) -> str | None:
    getter = getattr(exc, "getCondition", None)
    try:
        return getter() if callable(getter) else None
    except Exception:  # noqa: BLE001 - a malformed error object has no condition to report
        return None


def _call(target: Any, *names: str) -> str | None:
    """`target.a().b()` on a JVM object, None if the JVM cannot answer (gone, or not an object)."""
    try:
        for name in names:
            target = getattr(target, name)()
        return None if target is None else str(target)
    except Exception:  # noqa: BLE001 - a cause we cannot read is left out, never raised
        return None


def error_causes(exc: BaseException) -> list[str]:
    """The first line of each cause of `exc` (`Class: message`), as `error_cause` names them: from its
    message, a Spark Connect error's server-sent trace or the JVM exception's cause chain."""
    return _causes(_message(exc).strip().split("JVM stacktrace")[0], _java_exception(exc), exc)


def _causes(text: str, java: Any, exc: BaseException | None = None) -> list[str]:
    """The first line of each `Caused by`: from the text (a relayed JVM trace), else from the stack
    trace a Spark Connect error keeps of the server's exception (`getStackTrace()`, whose own causes
    are its unindented `Caused by:` lines; the client does not show it), else from the JVM exception's
    own cause chain."""
    found = [line.strip()[len(_CAUSED_BY):] for line in text.splitlines() if line.strip().startswith(_CAUSED_BY)]
    if not found and exc is not None:
        found = [line[len(_CAUSED_BY):].strip() for line in _connect_trace(exc).splitlines()
                 if line.startswith(_CAUSED_BY)]
    cause = _call_object(java, "getCause") if java is not None and not found else None
    while cause is not None and len(found) < _MAX_CAUSES:
        first = (_call(cause, "toString") or "").strip().splitlines()
        if first:
            found.append(first[0])
        cause = _call_object(cause, "getCause")
    return list(dict.fromkeys(found[:_MAX_CAUSES]))


def _connect_trace(exc: BaseException) -> str:
    """The server's stack trace a Spark Connect error holds (PySpark's `getStackTrace()`, duck-typed),
    "" without one."""
    getter = getattr(exc, "getStackTrace", None)
    try:
        return str((getter() if callable(getter) else None) or "")
    except Exception:  # noqa: BLE001 - no readable trace: the message alone
        return ""


def _call_object(target: Any, name: str) -> Any:
    try:
        return getattr(target, name)()
    except Exception:  # noqa: BLE001 - see _call
        return None


def _call_sites(exc: BaseException) -> list[str]:
    """`file:line` of each DataFrame call site in the Spark query contexts of the error and of its
    causes (PySpark 4's `getQueryContext()` / `callSite()`, duck-typed; a failed stream's own error
    has none, its cause has)."""
    sites: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CAUSES:
        seen.add(id(current))
        getter = getattr(current, "getQueryContext", None)
        try:
            contexts = getter() if callable(getter) else []
            sites += [line.strip() for context in contexts or [] for line in (context.callSite() or "").splitlines()]
        except Exception:  # noqa: BLE001 - no readable context: the causes or the traceback may tell
            pass
        captured = getattr(current, "_cause", None)  # PySpark's captured error keeps its JVM cause here
        current = captured if isinstance(captured, BaseException) else current.__cause__
    return sites
