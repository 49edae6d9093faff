"""Catalog mechanics: the Spark session, reading sources, and writing tables (versioned, failure-safe
rewrites, streaming appends, checkpoints). No data-quality policy lives here."""

__all__ = ["session", "sources", "storage", "reader"]  # public modules; the rest is internal
