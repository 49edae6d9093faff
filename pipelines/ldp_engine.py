"""Entry point: `ldp_engine`, `python -m pipelines.ldp_engine`, or `python pipelines/ldp_engine.py`."""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `pipelines` package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pipelines.engine.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
