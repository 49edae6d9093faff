"""Entry point: `ldp_engine`, `python -m pipelines.ldp_engine`, or `python pipelines/ldp_engine.py`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# gRPC (Spark Connect's client; DQX imports it while the config is checked) reads these once, when it is
# first imported, so they are set before anything else: no fork handlers (measured: with them, the embedded
# PostgreSQL's initdb, forked while the run's Connect session was open, died of SIGSEGV in gRPC's child
# handler), no INFO lines on stderr
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

if __package__ in (None, ""):  # run as a script: make the `pipelines` package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pipelines.engine.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
