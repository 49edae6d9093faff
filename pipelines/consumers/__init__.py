"""Consumers of finished tables and runs, plugged into the after-table seam (`pipelines.core.seam`)."""

__all__ = ["inventory", "monitor", "run_record", "sinks"]  # public modules; the rest is internal
