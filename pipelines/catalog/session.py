"""The Spark session: reuse the one the runtime provides, else start a local one with a persistent catalog.

Local state (warehouse, Derby metastore, checkpoints) lives under one project-local folder
(default `./.ldp`, override with `--state-dir` or LDP_STATE_DIR) that can be deleted to start fresh.
Local tables are Delta, as on Databricks: the first local session downloads Delta Lake's jars from
Maven Central into Ivy's cache (~/.ivy2.5.2, 33 jars, ~86 MB); later sessions start offline. Sources
that need a connector locally (a JDBC driver) add their Maven packages the same way (`packages`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from pipelines.core.errors import Problem, RunError

STATE_DIR_ENV = "LDP_STATE_DIR"
IVY_SETTINGS_ENV = "LDP_IVY_SETTINGS"
LOOPBACK = "127.0.0.1"
# pip's delta-spark 4.4.1 asks for io.delta:delta-spark_2.13:4.4.1, which Maven Central does not serve;
# this is the release built for Spark 4.2 (the same Delta protocol and Python API).
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
# A short-lived JVM (an SDP run's, or the session that reads its tables afterwards) finishes sooner on
# few cores with the quick (C1) compiler alone and the serial collector (an SDP run of 5 tables on 2
# cores: ~97-120 s with the defaults, ~73-75 s with these; its consumers' replay: 46 -> 31 s). A
# long-lived session (the Spark runner's tests, a big local run) is slower with C1 alone.
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_LOG4J = Path(__file__).with_name("log4j2.properties")


def state_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(STATE_DIR_ENV) or Path.cwd() / ".ldp").resolve()


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(state: Path, app_name: str = "ldp_engine", verbose: bool = False,
              packages: Iterable[str] = (), short_lived: bool = False) -> SparkSession:
    """The active session if there is one (Databricks, notebooks, tests); else a local Hive-backed one
    with Delta's jars and `packages` (Maven coordinates the plan's sources need locally), tuned for a
    few small reads if `short_lived`."""
    if not verbose:
        quiet_pyspark_loggers()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(state, app_name, verbose, packages=packages, short_lived=short_lived)


def warehouse_root(spark: SparkSession) -> Path | None:
    """The folder whose `warehouse/` holds the tables `spark` writes (the state folder of a session
    this engine started, or an active local session's own), so they can be read without a JVM; None
    where they are not local files in that layout (Databricks)."""
    if on_databricks():
        return None
    warehouse = Path(urlparse(spark.conf.get("spark.sql.warehouse.dir") or "").path)
    return warehouse.parent if warehouse.name == "warehouse" else None


def quiet_pyspark_loggers() -> None:
    """PySpark logs every SQL error with its JVM stack when the exception is created; the engine
    reports failures itself, so keep stderr readable."""
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def local_conf(state: Path, verbose: bool = False, packages: Iterable[str] = (),
               short_lived: bool = False) -> dict[str, str]:
    """Spark settings of every local run (Spark runner and SDP): a persistent Hive catalog under
    `state`, every port on 127.0.0.1, no UI, quiet JVM logs unless verbose, Delta plus `packages`."""
    java_options = f"-Dderby.system.home={state}" + (f" {SHORT_LIVED_JVM}" if short_lived else "")
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
        **delta_conf(packages),
    }


def local_packages(packages: Iterable[str] = ()) -> tuple[str, ...]:
    """Delta's package first, then the others once each, in a stable order (the jar cache's key)."""
    return (DELTA_PACKAGE, *sorted(set(packages) - {DELTA_PACKAGE}))


def delta_conf(packages: Iterable[str] = ()) -> dict[str, str]:
    """Delta Lake as the local table format: its jars, SQL extension and catalog. Rebuilding a small
    table's snapshot with Delta's default 50 partitions costs ~5 s per overwrite on two cores (measured);
    two partitions cost ~1.4 s. Delta keeps every table's log and snapshot it has read in a cache (10,000
    entries for 60 minutes by default): a long-lived local session (a test suite) retained ~2.8 MB per
    table until its 1 GB heap ran out. A bounded cache keeps it flat (measured with 16 entries: 405 -> 204 MB
    live after 100 tables); 32 leaves headroom for a run's own tables and is what CI runs."""
    wanted = local_packages(packages)
    jars = _fetched_jars(wanted)
    conf = {
        **({"spark.jars": ",".join(jars)} if jars else {"spark.jars.packages": ",".join(wanted)}),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.sources.default": "delta",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.delta.log.cacheSize": "32",
    }
    if os.environ.get(IVY_SETTINGS_ENV):  # a Maven mirror (Ivy then prints a line on stdout)
        conf["spark.jars.ivySettings"] = os.environ[IVY_SETTINGS_ENV]
    return conf


@contextmanager
def ivy_lock(resolving: bool = True) -> Iterator[None]:
    """One Ivy resolution at a time on this machine (two processes resolving into the same Ivy cache
    at once may both download a jar into the same file); a no-op when nothing is resolved."""
    if not resolving:
        yield
        return
    from filelock import FileLock

    lock = Path.home() / ".cache" / "ldp_engine" / "ivy.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        yield


def _jars_manifest(packages: tuple[str, ...]) -> Path:
    name = DELTA_PACKAGE.replace(":", "_")
    if len(packages) > 1:  # Delta alone keeps the file name earlier versions wrote
        name += "+" + hashlib.sha256(",".join(packages).encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "ldp_engine" / f"{name}.jars"


def _fetched_jars(packages: tuple[str, ...]) -> list[str]:
    """The jar files a previous session resolved for these packages, if all are still there: passed
    directly, they spare Ivy's resolution (~2 s and ~50 lines on stderr) and any network."""
    try:
        jars = _jars_manifest(packages).read_text(encoding="utf-8").split()
    except OSError:
        return []
    return jars if jars and all(Path(jar).is_file() for jar in jars) else []


def remember_fetched_jars(spark: SparkSession, packages: Iterable[str] = ()) -> None:
    """After Ivy resolved the packages, note the jar files it put on the classpath."""
    wanted = local_packages(packages)
    if _fetched_jars(wanted) or spark.conf.get("spark.jars.packages", "") != ",".join(wanted):
        return  # already noted, or this session was not started for exactly these packages
    jars = [urlparse(jar).path or jar for jar in spark.conf.get("spark.jars", "").split(",") if jar]
    if jars and all(Path(jar).is_file() for jar in jars):
        manifest = _jars_manifest(wanted)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("\n".join(jars) + "\n", encoding="utf-8")


def scratch_spark(state: Path, verbose: bool = False, packages: Iterable[str] = ()) -> SparkSession:
    """The active session, else a small local one with an in-memory catalog: for resolving queries on
    empty inputs (`plan`), without the state folder's metastore (a run may hold it) or its start-up."""
    active = SparkSession.getActiveSession()
    if active is not None or on_databricks():
        return get_spark(state, verbose=verbose)
    if not verbose:
        quiet_pyspark_loggers()
    return local_session(state, "ldp_engine_plan", verbose, master="local[1]", packages=packages,
                         short_lived=True, extra_conf={"spark.sql.catalogImplementation": "in-memory"})


def local_session(state: Path, app_name: str = "ldp_engine", verbose: bool = False,
                  master: str = "local[*]", extra_conf: Mapping[str, str] | None = None,
                  packages: Iterable[str] = (), short_lived: bool = False) -> SparkSession:
    """A local session whose catalog survives restarts; every listening port binds 127.0.0.1.
    Python UDF workers run this interpreter (Spark's default, `python3` on PATH, may lack pyspark's
    dependencies, and a worker that cannot start leaves its task waiting). `extra_conf` adds settings,
    e.g. a Spark Connect server other processes read through."""
    state.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    packages = tuple(packages)
    conf = {**local_conf(state, verbose, packages, short_lived), **(extra_conf or {})}
    for key, value in conf.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.scheduler.mode", "FAIR")
    if conf["spark.sql.catalogImplementation"] == "hive":  # unless `extra_conf` asks for a throw-away catalog
        builder = builder.enableHiveSupport()
    try:
        with _jvm_stdout_on_stderr(), ivy_lock(resolving="spark.jars.packages" in conf):
            session = builder.getOrCreate()
        remember_fetched_jars(session, packages)
        return session
    except Exception as exc:  # the JVM did not start: most often Delta's jars could not be fetched
        raise RunError(Problem(
            f"local Spark could not start ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            hint=f"the first local run downloads Delta Lake's jars ({', '.join(local_packages(packages))} "
                 "and their dependencies, ~86 MB) from Maven Central into ~/.ivy2.5.2; without network, copy "
                 f"that folder from a machine that has it, or point {IVY_SETTINGS_ENV} at an Ivy settings file naming your "
                 "Maven mirror; Ivy's own report is above")) from exc


@contextmanager
def _jvm_stdout_on_stderr() -> Iterator[None]:
    """The JVM inherits this process's stdout, and Ivy prints on it (`:: loading settings ::`); with
    `--format json` stdout carries the summary alone, so the JVM starts with its stdout on stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
