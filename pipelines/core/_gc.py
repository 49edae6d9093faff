"""Pause Python's cyclic garbage collector around allocation-heavy, cycle-free work.

Parsing and planning a large config allocates hundreds of thousands of small objects; each
automatic gen-2 collection rescans every live object (including every imported module), which
makes planning super-linear in a big process. Nothing here creates reference cycles.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
