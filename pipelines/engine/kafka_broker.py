"""A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on 127.0.0.1, for tests
and local runs of `type: kafka` sources, started from Apache Kafka's own jars on Maven Central.

The engine starts one for `bootstrap_servers: embedded` on local runs (`pipelines.engine.embedded_kafka`).
The first start resolves `org.apache.kafka:kafka_2.13` and its dependencies with the Ivy that pyspark
ships (into Spark's Ivy cache, `~/.ivy2.5.2`, ~45 jars, ~30 s once); the classpath is then kept in
`~/.cache/ldp_engine/` and later starts need no network (~2 s).

    with KafkaBroker(folder) as broker:
        broker.bootstrap_servers   # "127.0.0.1:PORT"
"""
from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import IO, Any

from pipelines.catalog.session import ivy_lock
from pipelines.ldp.sdp_process import free_port

KAFKA_VERSION = "4.1.1"
_ARTIFACT = ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION)
_LOOPBACK = "127.0.0.1"
_JVM = ["-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # a test broker: small and quick to start


def cluster_id() -> str:
    """A new KRaft cluster id: a random UUID in URL-safe base64, never starting with '-', as Kafka's own
    `Uuid.randomUuid` ensures (the storage tool's argument parser takes such an id for an option: one
    broker start in 64 failed with "argument --cluster-id/-t: expected one argument")."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


class KafkaBroker:
    """One broker in `folder` (its data and log), on free loopback ports; `stop()` (or leaving the `with`
    block) ends it. Topics are created on first use (`auto.create.topics.enable`, one partition). A folder
    started before keeps its topics and offsets (the broker is formatted only once)."""

    def __init__(self, folder: Path, partitions: int = 1):
        self.folder = folder
        self.partitions = partitions
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{_LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> "KafkaBroker":
        classpath = broker_classpath()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self._write_config(free_port())
        java = [_java(), *_JVM, "-cp", classpath]
        if not (self.folder / "data" / "meta.properties").is_file():  # a folder kept across starts keeps its log
            formatted = subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(config)],
                                       capture_output=True, text=True, timeout=120)
            if formatted.returncode != 0:  # say why: the run prints it when it leaves the broker's tables out
                output = (formatted.stdout + formatted.stderr).strip().splitlines()
                raise RuntimeError(f"formatting its storage failed (exit code {formatted.returncode}): "
                                   f"{output[-1] if output else 'no output'}")
        self._log = (self.folder / "broker.log").open("wb")
        self._process = subprocess.Popen([*java, "kafka.Kafka", str(config)], stdout=self._log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Kafka broker did not start on {self.bootstrap_servers}; its output is in "
                                   f"{self.folder / 'broker.log'}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _write_config(self, controller_port: int) -> Path:
        settings = {
            "process.roles": "broker,controller", "node.id": "1",
            "controller.quorum.voters": f"1@{_LOOPBACK}:{controller_port}",  # static: ports may change per start
            "listeners": f"PLAINTEXT://{_LOOPBACK}:{self.port},CONTROLLER://{_LOOPBACK}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{_LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.folder / "data"), "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "true", "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        config = self.folder / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()), encoding="utf-8")
        return config


def broker_classpath() -> str:
    """The broker's classpath: resolved once by Ivy (pyspark's own jar) from Maven Central, then cached."""
    cached = Path.home() / ".cache" / "ldp_engine" / f"kafka_2.13-{KAFKA_VERSION}.classpath"
    if cached.is_file():
        classpath = cached.read_text(encoding="utf-8").strip()
        if classpath and all(Path(jar).is_file() for jar in classpath.split(os.pathsep)):
            return classpath
    cached.parent.mkdir(parents=True, exist_ok=True)
    settings = os.environ.get("LDP_IVY_SETTINGS")  # a Maven mirror, as for Delta's jars
    command = [_java(), "-jar", str(_ivy_jar()), "-dependency", *_ARTIFACT, "-confs", "default",
               "-cache", str(Path.home() / ".ivy2.5.2" / "cache"), "-cachepath", str(cached)]
    with ivy_lock():  # test workers starting at once each want the broker
        resolved = subprocess.run(command + (["-settings", settings] if settings else []), capture_output=True,
                                  text=True, timeout=600)
    if resolved.returncode != 0 or not cached.is_file():
        raise RuntimeError(f"could not fetch Apache Kafka {KAFKA_VERSION} from Maven Central: "
                           f"{(resolved.stdout + resolved.stderr).strip().splitlines()[-1:]}")
    return cached.read_text(encoding="utf-8").strip()


def _ivy_jar() -> Path:
    import pyspark

    [jar] = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    return jar


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _listening(port: int) -> bool:
    try:
        socket.create_connection((_LOOPBACK, port), timeout=0.5).close()
        return True
    except OSError:
        return False
