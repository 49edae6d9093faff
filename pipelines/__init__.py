"""databricks_etl_framework: config-driven Lakeflow Declarative Pipelines."""
import os
from importlib.metadata import PackageNotFoundError, version

# gRPC (Spark Connect's client; DQX imports it while the config is checked) reads these once, when it is
# first imported, so the package sets them before any of its modules can import it, whatever the entry
# (console script, the ldp_spark pytest plugin, a notebook): no fork handlers (measured: with them, the
# embedded PostgreSQL's initdb, forked while a Connect session was open, died of SIGSEGV in gRPC's child
# handler), no INFO lines on stderr. setdefault: a user's own value wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

try:  # one version, in setup.py, which release-please bumps; the installed wheel reports it
    __version__ = version("databricks_etl_framework")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
