"""The Spark session: reuse the one the runtime provides, else start a local one with a persistent catalog.

Local state (warehouse, Derby metastore, checkpoints) lives under one project-local folder
(default `./.ldp`, override with `--state-dir` or LDP_STATE_DIR) that can be deleted to start fresh.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Mapping

from pyspark.sql import SparkSession

STATE_DIR_ENV = "LDP_STATE_DIR"
LOOPBACK = "127.0.0.1"
_LOG4J = Path(__file__).with_name("log4j2.properties")


def state_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(STATE_DIR_ENV) or Path.cwd() / ".ldp").resolve()


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(state: Path, app_name: str = "ldp_engine", verbose: bool = False) -> SparkSession:
    """The active session if there is one (Databricks, notebooks, tests); else a local Hive-backed one."""
    if not verbose:
        quiet_pyspark_loggers()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(state, app_name, verbose)


def quiet_pyspark_loggers() -> None:
    """PySpark logs every SQL error with its JVM stack when the exception is created; the engine
    reports failures itself, so keep stderr readable."""
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def local_conf(state: Path, verbose: bool = False) -> dict[str, str]:
    """Spark settings of every local run (Spark runner and SDP): a persistent Hive catalog under
    `state`, every port on 127.0.0.1, no UI, quiet JVM logs unless verbose."""
    java_options = f"-Dderby.system.home={state}"
    if not verbose:
        java_options += f" -Dlog4j2.configurationFile=file:{_LOG4J}"
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": java_options,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.driver.host": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.schemaInference": "true",
    }


def local_session(state: Path, app_name: str = "ldp_engine", verbose: bool = False,
                  master: str = "local[*]", extra_conf: Mapping[str, str] | None = None) -> SparkSession:
    """A local session whose catalog survives restarts; every listening port binds 127.0.0.1.
    Python UDF workers run this interpreter (Spark's default, `python3` on PATH, may lack pyspark's
    dependencies, and a worker that cannot start leaves its task waiting). `extra_conf` adds settings,
    e.g. a Spark Connect server other processes read through."""
    state.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**local_conf(state, verbose), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.scheduler.mode", "FAIR").enableHiveSupport()
    return builder.getOrCreate()
