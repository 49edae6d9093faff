"""Lakeflow / Spark Declarative Pipelines runners: registration (plan → pipeline datasets), the local
SDP runner (one dataflow graph per plan level) and Databricks pipeline updates."""

__all__ = ["registrar", "sdp", "sdp_levels", "update", "flow_events", "query_errors"]  # public modules; the rest is internal
