"""The local broker behind `bootstrap_servers: embedded`, as the embedded PostgreSQL is behind an unset
`lakebase:`: a local run whose tables read or write it starts a real single-node Kafka in
`{state}/kafka` (kept across runs, so topics and a stream's offsets stay), publishes `kafka.seed`'s new
files to their topics, and stops it when the run ends. Its address is in `LDP_EMBEDDED_KAFKA` while the
run lasts (the SDP process inherits it). When it cannot start (no Java, offline before its jars were
fetched), the tables using it and their downstream are left out of the run, which says so, and the
rest of the pipeline runs: the example's one command works with or without Kafka."""
from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.core.config import Config
from pipelines.core.errors import ConfigError, Problem, RunError
from pipelines.core.kafka_source import EMBEDDED_KAFKA_ENV, KafkaClient
from pipelines.core.plan import Plan

from .kafka_broker import KafkaBroker

STARTING_FAILED = (RuntimeError, OSError, subprocess.SubprocessError)  # no java, no jars, a failed format
LEDGER = "seeded.json"  # {topic: [file names published]} beside the broker's data: deleted with it


@dataclass(frozen=True)
class EmbeddedKafka:
    """What the run got: the broker's address (None when none was needed or it did not start), the tables
    left out because it did not start, and the events published per topic."""

    address: str | None = None
    skipped: tuple[str, ...] = ()
    published: dict[str, int] = field(default_factory=dict)


def embedded_users(plan: Plan, sinks_only: bool = False) -> tuple[str, ...]:
    """The planned tables with a source, flow or sink (only a sink: `sinks_only`) on the embedded broker."""
    return tuple(t.name for t in plan.tables
                 if any(isinstance(spec, KafkaClient) and spec.embedded
                        for spec in (t.config.sinks if sinks_only else t.config.connectors)))


@contextmanager
def embedded_kafka(plan: Plan, state: Path, echo: Callable[[str], None],
                   sinks_only: bool = False) -> Iterator[EmbeddedKafka]:
    """The broker for the run's duration, seeded; nothing when no planned table uses it. `sinks_only`
    (`sinks publish`): for the tables' sinks alone, unseeded (the seed stands in for the sources'
    producers, and publishing sinks reads no source), and one that cannot start only fails those sinks."""
    users = embedded_users(plan, sinks_only)
    if not users or "DATABRICKS_RUNTIME_VERSION" in os.environ:  # a broker on a job's driver would vanish with it:
        yield EmbeddedKafka()                                     # its tables fail naming the key instead
        return
    folder = state / "kafka"
    try:
        broker = _started(folder)
    except STARTING_FAILED as exc:  # no java, no jars, a failed format
        if sinks_only:
            echo(f"Kafka: the embedded broker did not start ({exc}); the Kafka sinks of {', '.join(users)} fail")
            yield EmbeddedKafka(skipped=users)
            return
        skipped = plan.downstream_of(users)
        if len(skipped) == len(plan.tables):
            raise RunError(Problem(f"the embedded Kafka broker did not start: {exc}", key="bootstrap_servers",
                                   value="embedded", hint="every selected table needs it")) from None
        echo(f"Kafka: the embedded broker did not start ({exc}); skipping {', '.join(skipped)}")
        yield EmbeddedKafka(skipped=skipped)
        return
    previous = os.environ.get(EMBEDDED_KAFKA_ENV)
    os.environ[EMBEDDED_KAFKA_ENV] = broker.bootstrap_servers
    try:
        said, published = f"Kafka: embedded broker on {broker.bootstrap_servers} (data in {folder})", {}
        if not sinks_only:
            published = seed(plan.config, broker.bootstrap_servers, folder)
            said += "; published " + (", ".join(f"{count} to {topic}" for topic, count in published.items())
                                      or "no new seed events")
        echo(said)
        yield EmbeddedKafka(broker.bootstrap_servers, published=published)
    finally:
        if previous is None:
            os.environ.pop(EMBEDDED_KAFKA_ENV, None)
        else:
            os.environ[EMBEDDED_KAFKA_ENV] = previous
        broker.stop()


def _started(folder: Path) -> KafkaBroker:
    """A broker on `folder`; a start that failed is tried once more, on other free ports (another process
    may take a port between the broker's choosing and its binding it)."""
    try:
        return KafkaBroker(folder).start()
    except STARTING_FAILED:
        logging.getLogger(__name__).debug("the embedded Kafka broker did not start; once more", exc_info=True)
        return KafkaBroker(folder).start()


def seed(config: Config, servers: str, folder: Path) -> dict[str, int]:
    """Publish each seed file not published before (name order, one message value per non-blank line,
    stamped with the file's modification time); return the events published per topic. The ledger is
    written after the broker acknowledged every event: a run that dies in between publishes again
    (at least once)."""
    ledger = folder / LEDGER
    done: dict[str, list[str]] = json.loads(ledger.read_text(encoding="utf-8")) if ledger.is_file() else {}
    pending = {topic: [f for f in _seed_files(config, topic, path) if f.name not in done.get(topic, [])]
               for topic, path in config.kafka.seed.items()}
    if not any(pending.values()):
        return {}
    from confluent_kafka import Producer

    failures: list[str] = []
    log = logging.getLogger("ldp_engine.kafka")
    log.setLevel(logging.ERROR)  # librdkafka's retries while a fresh broker loads are not news
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5}, logger=log)

    def delivered(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    published: dict[str, int] = {}
    for topic, files in pending.items():
        for file in files:
            stamp = int(file.stat().st_mtime * 1000)
            for line in file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    producer.produce(topic, line.encode("utf-8"), timestamp=stamp, on_delivery=delivered)
                    producer.poll(0)
                    published[topic] = published.get(topic, 0) + 1
    unsent = producer.flush(60)
    if unsent or failures:
        raise RunError(Problem(f"could not publish the seed events to the embedded broker {servers}: "
                               f"{failures[0] if failures else f'{unsent} not acknowledged within 60 s'}",
                               key="kafka.seed"))
    for topic, files in pending.items():
        done[topic] = [*done.get(topic, []), *(f.name for f in files)]
    partial = ledger.with_suffix(".tmp")
    partial.write_text(json.dumps(done, indent=1), encoding="utf-8")
    partial.replace(ledger)
    return {topic: count for topic, count in published.items() if count}


def _seed_files(config: Config, topic: str, path: str) -> list[Path]:
    source = (config.base_dir / path).resolve()
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ConfigError(Problem(f"no such file or folder: {source}", file=str(config.path),
                                  key=f"kafka.seed.{topic}", value=path))
    return sorted(f for f in source.iterdir() if f.is_file() and not f.name.startswith((".", "_")))
