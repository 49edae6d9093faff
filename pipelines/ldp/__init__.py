"""Lakeflow / Spark Declarative Pipelines: registration, entry source, SDP and Databricks runners."""
