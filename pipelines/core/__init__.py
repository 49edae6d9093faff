"""The pure core: config, graph, plan, transformation loading, errors and the run result model.

Nothing here imports Spark, so planning (`validate`, `--dry-run`) runs in milliseconds, and every
other package may depend on it.
"""

__all__ = ["config", "errors", "graph", "loader", "plan", "results", "rules", "seam", "sql", "vocabulary"]  # public modules; the rest is internal
