"""The error of a failed flow, read from the event open-source SDP sends its client over Spark Connect.

The event has only a timestamp and a message; for a failure the server (`PipelineEventSender`) writes
the message of the exception and of each of its causes, one after the other:

    Flow 'spark_catalog.default.t' has FAILED.
    Error: [TASK_WRITE_FAILED] Task failed while writing rows to file:/.../t. SQLSTATE: 58030
    [USER_RAISED_EXCEPTION] boom SQLSTATE: P0001

On Delta a query that fails at run time fails inside the write task, so the first message only names
the write; the user's own error is a cause. A message may span several lines (a query context
`== DataFrame ==` with the call site, a Python worker's traceback), so causes are told apart by their
error condition (`[CONDITION] ...`) rather than by line.
"""
from __future__ import annotations

import re

from pipelines.core.errors import error_causes, redact

_CONDITION = re.compile(r"^\[[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*\] ")
_CONTEXT = re.compile(r"^== .+ ==$")  # a query context: `== DataFrame ==`, `== SQL (line 1, position 8) ==`
_CALL_SITE = re.compile(r"^(\S+\.py:\d+)$")
_TRACEBACK = "Traceback (most recent call last):"
_MAX_CAUSES = 4


def flow_error(message: str) -> str | None:
    """`first message; caused by: each cause` of a FAILED flow event, with the call site of the user's
    DataFrame code when Spark recorded one (`(at file.py:line)`), as the Spark runner reports it (secrets a
    message echoes masked); None when the event carries no error."""
    if "Error:" not in message:
        return None
    found, site = _messages(message.split("Error:", 1)[1].strip().splitlines())
    if not found:
        return None
    head, causes = found[0], [c for c in dict.fromkeys(found[1:]) if c not in found[0]][:_MAX_CAUSES]
    return redact(head + "".join(f"; caused by: {cause}" for cause in causes) + (f" (at {site})" if site else ""))


def _messages(lines: list[str]) -> tuple[list[str], str | None]:
    """Each message's first line (a Python traceback's replaced by its exception line) and the first
    call site of a query context; a context's other lines and indented lines are no message."""
    found: list[str] = []
    site = None
    skipping, traceback = False, None  # inside a query context / a Python traceback (its opening text)
    for line in (line.rstrip() for line in lines):
        if traceback is not None:
            if line.strip() and not line[:1].isspace():  # the traceback's last line: the exception
                found.append(traceback + line.strip())
                traceback = None
        elif _CONTEXT.match(line.strip()):
            skipping = True
        elif _CONDITION.match(line) or (not skipping and line.strip() and not line[:1].isspace()):
            skipping = False
            if line.endswith(_TRACEBACK):
                traceback = line[:-len(_TRACEBACK)]
            elif line.strip() != "null":
                found.append(line.strip())
        elif skipping and site is None and _CALL_SITE.match(line.strip()):
            site = line.strip()
    return found, site


def run_error(exc: BaseException) -> str:
    """A failed run's error (the exception the client's run call raised): its message's first line and
    the first line of each cause (`error_causes`: the client keeps the causes the server sent as the
    exception's stack trace, `Caused by: Class: message` lines, even when, as here, it does not show
    that trace); a cause whose message the first line already tells is left out."""
    lines = str(exc).strip().splitlines()
    head = lines[0] if lines else type(exc).__name__
    found = [c for c in error_causes(exc) if c.partition(": ")[2] not in head][:_MAX_CAUSES]
    return redact(head + "".join(f"; caused by: {cause}" for cause in found))
