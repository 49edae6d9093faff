"""Files the engine keeps in its state folder (run records, reports, sink batch counters)."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader, or a crash, sees the old file or the new one, never
    half of one: a temporary file beside it (named per process, so concurrent writers never share one),
    then one rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
