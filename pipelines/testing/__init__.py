"""Test helpers shipped with the wheel: a session-scoped local `spark` fixture (pytest plugin)."""
