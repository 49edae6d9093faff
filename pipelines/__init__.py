"""databricks_etl_framework: config-driven Lakeflow Declarative Pipelines."""
__version__ = "0.1.0"
