"""Runners that execute a Plan on local or job-cluster Spark (the pipeline runners are in `pipelines.ldp`)."""

__all__ = ["schedule", "spark"]  # public modules; the rest is internal
