"""Test helpers shipped with the wheel: a session-scoped local `spark` fixture (pytest plugin)."""

__all__ = ["plugin"]  # public modules; the rest is internal
