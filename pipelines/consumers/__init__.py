"""Consumers of finished tables and runs, plugged into the after-table seam (`pipelines.core.seam`)."""

__all__ = ["inventory", "lakebase_sinks", "monitor", "run_record"]  # public modules; the rest is internal
