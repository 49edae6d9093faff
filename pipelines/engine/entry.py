"""What a pipeline's entry source runs: read the pipeline configuration, register the whole graph.

Pipeline configuration keys (Databricks `configuration:` / spark-pipeline.yml `configuration:`):

    ldp.config   path to config.yml                    (default: ./config.yml, else the bundled example)
    ldp.mode     batch | streaming                     (default: batch)
    ldp.tags     comma-separated tags, validated here  (refreshing a selection is the update's job)
    ldp.match    all | any                             (default: all)
    ldp.catalog / ldp.schema   overrides, as the CLI's --catalog/--schema
    ldp.var.NAME the value of config.yml's ${var.NAME}, as the CLI's --var NAME=VALUE

Every table of the config is defined, whatever the tags: a pipeline that defined only a selection
would drop the other tables. Tags choose what an update refreshes (`ldp_engine --runner pipeline`).
"""
from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import SparkSession

from pipelines.core.config import load_config
from pipelines.core.errors import UsageError
from pipelines.core.graph import Selection, split_names
from pipelines.core.plan import build_plan
from pipelines.core.variables import Overrides
from pipelines.engine.project import default_config, load_project
from pipelines.catalog.session import on_databricks

from pipelines.ldp.registrar import Registrar, pipeline_api

log = logging.getLogger(__name__)
CONF_PREFIX = "ldp."
MODES = ("batch", "streaming")


def setting(spark: SparkSession, key: str, default: str = "") -> str:
    value = spark.conf.get(CONF_PREFIX + key, default)
    return (value or default).strip()


def register_pipeline(spark: SparkSession, dp: Any = None) -> Registrar:
    """Load, validate and register the configured project's whole graph; return the registrar."""
    mode = setting(spark, "mode", "batch")
    if mode not in MODES:
        raise UsageError(f"pipeline configuration ldp.mode={mode!r}: expected one of {', '.join(MODES)}")
    match = setting(spark, "match", "all")
    tags = split_names(setting(spark, "tags"))
    config_path = setting(spark, "config") or str(default_config())
    catalog, schema = setting(spark, "catalog") or None, setting(spark, "schema") or None
    config = load_config(config_path, Overrides.from_conf(spark.conf.getAll))
    project = load_project(config, Selection(), mode, check_all_modules=True,  # type: ignore[arg-type]
                           catalog=catalog, schema=schema)
    if tags:  # an unknown tag is an error here too, not a silently empty refresh (pure, no reload)
        build_plan(project.config, Selection(tags=tags, match=match), mode)  # type: ignore[arg-type]
    registrar = Registrar(spark, project.plan, project.functions, dp or pipeline_api(),
                          auto_loader=on_databricks(), sink_functions=project.sink_functions)
    registrar.register()
    log.info("registered %d tables of %s (%s mode)", len(project.plan.tables), config_path, mode)
    return registrar
