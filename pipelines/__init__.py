"""databricks_etl_framework: config-driven Lakeflow Declarative Pipelines."""
from importlib.metadata import PackageNotFoundError, version

try:  # one version, in setup.py, which release-please bumps; the installed wheel reports it
    __version__ = version("databricks_etl_framework")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
