"""Lakebase (managed PostgreSQL): where connections go (`connection`) and how a table is copied
there atomically (`sink`)."""

__all__ = ["connection", "inventory", "sink"]  # public modules
