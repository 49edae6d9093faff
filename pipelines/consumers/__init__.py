"""Consumers of finished tables and runs, plugged into the after-table seam (`pipelines.core.seam`)."""
