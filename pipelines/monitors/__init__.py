"""Profiling monitors: the metrics Databricks data profiling computes, computed locally in the same
table schema (`profile`), in a fixed number of scans whatever the number of columns."""

__all__ = ["alerts", "digest", "drift", "model_quality", "profile", "provision"]  # public modules
