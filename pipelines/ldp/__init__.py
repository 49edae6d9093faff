"""Lakeflow / Spark Declarative Pipelines runners: registration (plan → pipeline datasets), the local
SDP runner (one dataflow graph per plan level) and Databricks pipeline updates."""
