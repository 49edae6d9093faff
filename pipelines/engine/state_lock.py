"""One run per state folder: the local catalog (Derby metastore), warehouse and checkpoints admit a
single user at a time. Derby's own refusal surfaces as an unreadable Hive error deep in a run; this
lock answers first, naming the holder and the way out.

The lock is an OS file lock (`filelock`): the kernel releases it when its process dies, so a run
killed with SIGKILL never leaves the folder blocked. Who holds it is recorded beside it, for messages.
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from pipelines.core.errors import Problem, RunError

LOCK_FILE = "ldp.lock"
HOLDER_FILE = "ldp.lock.json"


class StateBusy(RunError):
    """Another process holds the state folder (exit 3)."""


@contextmanager
def state_lock(state: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold `state` for the duration; wait up to `wait` seconds for another holder, else StateBusy."""
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state / LOCK_FILE), timeout=max(wait, 0.0))
    try:
        lock.acquire(poll_interval=0.1)
    except Timeout:
        raise StateBusy(_busy_problem(state, wait)) from None
    holder = state / HOLDER_FILE
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "started": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv[1:])[:300]}), encoding="utf-8")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _busy_problem(state: Path, wait: float) -> Problem:
    try:
        info = json.loads((state / HOLDER_FILE).read_text(encoding="utf-8"))
        who = f"process {info['pid']}, started {info['started']}" + (
            f": ldp_engine {info['command']}" if info.get("command") else "")
    except (OSError, ValueError, KeyError):
        who = "another process"
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return Problem(f"the state folder {state} is in use by {who}{waited}",
                   hint="wait for it to finish (or pass --wait SECONDS), or give this run its own --state-dir")
