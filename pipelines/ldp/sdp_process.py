"""The SDP process from the outside: the loopback port its Spark Connect server takes, the line saying
it holds that server for the CLI's consumers, and why it died.

Two SDP runs on one machine must not share Spark Connect's default port 15002 (the second one dies
with a BindException), so each run takes a free loopback port. A process that dies before writing
its result leaves only its output, a Python traceback wrapping a Java stack: the cause is the first
line of each exception in it (and of each `Caused by:`), never the tail of a stack.
"""
from __future__ import annotations

import os
import re
import socket
from typing import Iterable

from pipelines.catalog.session import LOOPBACK
from pipelines.core.errors import Problem, UsageError

HELD = "ldp-sdp: result written, holding the server"  # the driver's line once it waits for its release
PORT_ENV = "LDP_SDP_PORT"  # force the Spark Connect port of `--runner sdp` (else a free one per run)
_CLASS = r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*"
# `java.io.IOException: Failed to bind`, `: java...` (py4j), `Exception in thread "main" org...`
_JAVA = re.compile(rf'^(?::\s+|Exception in thread "[^"]*"\s+)?({_CLASS}(?:Exception|Error|Throwable)[\w$]*)(?::\s*(.*))?$')
_CAUSED = re.compile(rf"^Caused by:\s+({_CLASS})(?::\s*(.*))?$")
_PYTHON = re.compile(r"^([A-Za-z_][\w.]*(?:Exception|Error|Exit|Interrupt)\w*)(?::\s*(.*))?$")
_BIND = ("java.net.BindException", "Address already in use", "Failed to bind to address")
_MAX_LINE = 500


def free_port() -> int:
    """A loopback port free right now (the OS picks it; someone may still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def forced_port(environ: dict[str, str] | None = None) -> int | None:
    """`LDP_SDP_PORT`, if set: the user's (or a test's) own port, never retried on another."""
    value = (os.environ if environ is None else environ).get(PORT_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(Problem(f"{PORT_ENV} must be a port number (1-65535)", value=value,
                                 hint=f"unset {PORT_ENV}, and each run takes a free port"))
    return int(value)


def bind_failed(lines: Iterable[str]) -> bool:
    """The process died because its port was taken (worth one retry on a new free port)."""
    return any(marker in line for line in lines for marker in _BIND)


def _line(kind: str, message: str | None) -> str:
    text = f"{kind}: {message.strip()}" if message and message.strip() else kind
    return text if len(text) <= _MAX_LINE else text[:_MAX_LINE - 3] + "..."


def failure_cause(lines: list[str]) -> list[str]:
    """The cause of a process that died, from its output: the first line of each exception, with its
    class, without repeats: a Python traceback's exception line first, then each Java exception and
    `Caused by:` in order (Spark may log the Java one before Python's traceback, or not at all).
    Empty when the output holds no exception."""
    python: list[str] = []
    java: list[str] = []
    in_traceback = False
    for line in lines:
        text = line.rstrip()
        if text.startswith("Traceback (most recent call"):
            in_traceback = True
            continue
        found, from_python = _exception(text, in_traceback)
        if in_traceback and text and not text.startswith((" ", "\t")):
            in_traceback = False  # the first unindented line after the frames is the exception's
        if found and found not in python + java:
            (python if from_python else java).append(found)
    return python + java


def _exception(text: str, in_traceback: bool) -> tuple[str | None, bool]:
    """The `Class: first line` an output line starts, if it starts one, and whether it ends a Python
    traceback."""
    python_line = in_traceback and bool(text) and not text.startswith((" ", "\t", ":"))
    if caused := _CAUSED.match(text):
        return "Caused by: " + _line(caused.group(1), caused.group(2)), False
    if java := _JAVA.match(text):
        return _line(java.group(1), java.group(2)), python_line
    if python_line and (python := _PYTHON.match(text)):
        return _line(python.group(1), python.group(2)), True
    return None, False


def describe_failure(code: int, lines: list[str]) -> str:
    """One message for a process that ended without a result: its cause, else its last lines."""
    causes = failure_cause(lines)
    if causes:
        return (f"the Spark Declarative Pipelines process failed (exit code {code}): " + " | ".join(causes))
    tail = [line.strip() for line in lines if line.strip()][-5:]
    return (f"the Spark Declarative Pipelines process exited with code {code} without a result"
            + (": " + " | ".join(tail) if tail else ""))
