"""Lakebase (managed PostgreSQL): where connections go (`connection`) and how a table is copied
there atomically (`sink`), the run inventory (`inventory`) and the rule store (`rules`)."""

__all__ = ["connection", "inventory", "rules", "sink"]  # public modules
