"""Entry source of a Lakeflow (Databricks) or Spark Declarative Pipeline: the file `libraries` points to.

It registers every table of config.yml as a pipeline dataset; settings come from the pipeline
configuration (`ldp.config`, `ldp.mode`, `ldp.tags`, `ldp.match`: see pipelines/engine/entry.py).
"""
from pyspark.sql import SparkSession

from pipelines.engine.entry import register_pipeline

# The pipeline runtime injects `spark` into this module; the active session otherwise.
register_pipeline(globals().get("spark") or SparkSession.getActiveSession())
