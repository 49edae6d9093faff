"""`type: kafka` and `type: python` sinks, written after the table on the after-table seam: rows published
as JSON messages to a real broker on 127.0.0.1 (key, headers naming the table and run), and the project's
`write(batch_df, batch_id)` handed the table with a batch id that advances only when the call succeeds.
A failing sink fails the run (exit 3 on the CLI) and leaves the table written; a rerun publishes again
(Kafka: at least once) or retries the failed batch under its own id (python)."""
from __future__ import annotations

import itertools
import json

import pytest

from pipelines.catalog.sinks import SinkRun
from pipelines.consumers.sinks import TableSinks
from pipelines.core.errors import ConfigError
from pipelines.core.seam import Consumers
from pipelines.engine.project import load_project
from tests.spark.harness import Harness

_topics = itertools.count()
MODULES = {
    "silver/scores.py": "def scores(source):\n    return source\n",
    "sinks/audit.py": (
        "import json, pathlib\n"
        "def write(batch_df, batch_id):\n"
        "    folder = pathlib.Path(__file__).parent\n"
        "    if (folder / 'FAIL').exists():\n"
        "        raise RuntimeError('the audit store is down')\n"
        "    ids = sorted(r['id'] for r in batch_df.collect())\n"
        "    with open(folder / 'calls.jsonl', 'a') as out:\n"
        "        out.write(json.dumps({'batch_id': batch_id, 'ids': ids, 'columns': batch_df.columns}) + '\\n')\n"),
}


def config(servers: str, topic: str) -> str:
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: scores
    layer: silver
    source: {{type: table, table: scores_src}}
    expectations:
      - {{name: has_name, criticality: warn, check: {{function: is_not_null, arguments: {{column: name}}}}}}
    sinks:
      - {{type: kafka, bootstrap_servers: '{servers}', topic: {topic}, key: "concat('s-', id)"}}
      - {{type: python, module: audit}}
"""


def run(harness: Harness, run_id: str):
    project = load_project(harness.path)
    sinks = TableSinks(SinkRun(run_id, base_dir=harness.root, functions=project.sink_functions,
                               state=harness.root / ".ldp"))
    return harness.run(consumers=Consumers([sinks], run_id=run_id))


def messages(spark, servers: str, topic: str) -> list[tuple]:
    """(key, value as a dict, headers as a dict) of every message on the topic, by run and key."""
    read = (spark.read.format("kafka").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
            .option("startingOffsets", "earliest").option("includeHeaders", "true").load())
    found = [(r["key"].decode(), json.loads(r["value"]), {h["key"]: h["value"].decode() for h in r["headers"]})
             for r in read.collect()]
    return sorted(found, key=lambda m: (m[2]["ldp_run_id"], m[0]))


def calls(harness: Harness) -> list[dict]:
    return [json.loads(line) for line in (harness.root / "transformations/sinks/calls.jsonl").read_text().splitlines()]


@pytest.fixture
def topic() -> str:
    return f"scores_out_{next(_topics)}"


def test_rows_are_published_to_kafka_and_handed_to_a_python_sink_over_two_runs(spark, tmp_path, kafka_broker, topic):
    harness = Harness(spark, tmp_path, MODULES, config=config(kafka_broker, topic))
    spark.createDataFrame([(1, "a"), (2, None)], "id INT, name STRING").createOrReplaceTempView("scores_src")
    tables, result = run(harness, "r1")
    assert result.succeeded, tables["scores"].to_dict()
    assert [(s["type"], s["target"], s["mode"], s["rows"], s["status"]) for s in tables["scores"].sinks] == [
        ("kafka", f"{topic} on {kafka_broker}", "publish", 2, "success"),
        ("python", "sinks/audit.py:write", "foreach_batch", 2, "success")]
    assert messages(spark, kafka_broker, topic) == [  # the row as JSON (a null kept), without DQX's columns
        ("s-1", {"id": 1, "name": "a"}, {"ldp_table": "scores", "ldp_run_id": "r1"}),
        ("s-2", {"id": 2}, {"ldp_table": "scores", "ldp_run_id": "r1"})]
    assert calls(harness) == [{"batch_id": 0, "ids": [1, 2], "columns": ["id", "name"]}]

    spark.createDataFrame([(3, "c")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    tables, result = run(harness, "r2")
    assert result.succeeded, tables["scores"].to_dict()
    assert [m[0] for m in messages(spark, kafka_broker, topic)] == ["s-1", "s-2", "s-3"]
    assert messages(spark, kafka_broker, topic)[-1][2]["ldp_run_id"] == "r2"
    assert [c["batch_id"] for c in calls(harness)] == [0, 1]


def test_a_failed_sink_leaves_the_table_written_and_its_rerun_retries_the_same_batch(
        spark, tmp_path, kafka_broker, topic):
    harness = Harness(spark, tmp_path, MODULES, config=config(kafka_broker, topic))
    spark.createDataFrame([(1, "a")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    assert run(harness, "r1")[1].succeeded
    (tmp_path / "transformations/sinks/FAIL").touch()
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    tables, result = run(harness, "r2")
    kafka, audit = tables["scores"].sinks
    assert (kafka["status"], audit["status"]) == ("success", "failed")
    assert audit["error"] == "RuntimeError: the audit store is down"
    assert tables["scores"].succeeded and not result.succeeded  # the table is written; the run fails
    assert sorted(r["id"] for r in harness.table("scores").collect()) == [1, 2]

    (tmp_path / "transformations/sinks/FAIL").unlink()
    tables, result = run(harness, "r3")
    assert result.succeeded
    assert [(c["batch_id"], c["ids"]) for c in calls(harness)] == [(0, [1]), (1, [1, 2])]  # batch 1 retried


def test_an_unreachable_broker_fails_the_sink_naming_its_address_and_no_secret(spark, tmp_path, monkeypatch):
    from pipelines.ldp.sdp_process import free_port

    servers = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("KAFKA_SINK_JAAS", "org.apache.kafka.common.security.plain.PlainLoginModule required "
                       "username='u' password='s3cret-value';")
    harness = Harness(spark, tmp_path, MODULES, config=config(servers, "nowhere").replace(
        "key: \"concat('s-', id)\"", "jaas_config_env: KAFKA_SINK_JAAS"))
    spark.createDataFrame([(1, "a")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    tables, result = run(harness, "r1")
    kafka, audit = tables["scores"].sinks
    assert kafka["status"] == "failed" and audit["status"] == "success"
    assert f"no Kafka broker can be reached ({servers}: Connection refused)" in kafka["error"], kafka["error"]
    assert "s3cret" not in json.dumps(tables["scores"].to_dict())
    assert tables["scores"].succeeded and not result.succeeded
    assert harness.table("scores").count() == 1


@pytest.mark.parametrize("module, problem", [
    ({}, "key 'sinks[1].module': sink module not found"),
    ({"sinks/audit.py": "def write(batch_df):\n    pass\n"},
     "key 'sinks[1].function': module {file} does not define write(batch_df, batch_id)"),
])
def test_a_python_sink_without_its_function_is_a_located_config_error(tmp_path, module, problem):
    harness = Harness(None, tmp_path, {"silver/scores.py": MODULES["silver/scores.py"], **module},
                      config=config("127.0.0.1:9092", "t"))
    with pytest.raises(ConfigError) as caught:
        load_project(harness.path)
    text = str(caught.value)
    assert f"{harness.path}" in text and "table 'scores'" in text, text
    assert problem.format(file=tmp_path / "transformations/sinks/audit.py") in text, text



def ldp_engine(harness: Harness, *args: str):
    from click.testing import CliRunner

    from pipelines.engine.cli import cli

    return CliRunner().invoke(cli, [*args, "--config", str(harness.path), "--format", "json",
                                    "--state-dir", str(harness.root / ".ldp")])


def test_on_the_cli_a_failed_sink_exits_3_and_sinks_publish_retries_its_batch(spark, tmp_path, kafka_broker, topic):
    harness = Harness(spark, tmp_path, MODULES, config=config(kafka_broker, topic))
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    (tmp_path / "transformations/sinks/FAIL").touch()

    ran = ldp_engine(harness, "run")
    assert ran.exit_code == 3, ran.output
    [scores] = json.loads(ran.stdout)["tables"]
    assert scores["status"] == "success" and [s["status"] for s in scores["sinks"]] == ["success", "failed"]
    (tmp_path / "transformations/sinks/FAIL").unlink()
    published = ldp_engine(harness, "sinks", "publish")
    assert published.exit_code == 0, published.output
    assert [(c["batch_id"], c["ids"]) for c in calls(harness)] == [(0, [1, 2])]  # the failed batch, retried
    assert len(messages(spark, kafka_broker, topic)) == 4  # published by both: at least once


def test_a_sink_on_the_embedded_broker_is_written_by_the_run_and_by_sinks_publish(spark, tmp_path, topic):
    """`sinks publish` starts the state folder's broker for its Kafka sinks, as the run does, unseeded."""
    from pipelines.engine.kafka_broker import KafkaBroker

    harness = Harness(spark, tmp_path, MODULES, config=config("embedded", topic))
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, name STRING").createOrReplaceTempView("scores_src")
    ran = ldp_engine(harness, "run")
    assert ran.exit_code == 0, ran.output
    assert "Kafka: embedded broker on 127.0.0.1:" in ran.stderr
    published = ldp_engine(harness, "sinks", "publish")
    assert published.exit_code == 0, published.output
    [said] = [line for line in published.stderr.splitlines() if line.startswith("Kafka:")]
    assert said.startswith("Kafka: embedded broker on 127.0.0.1:") and "published" not in said, said
    [scores] = json.loads(published.stdout)["tables"]
    assert [(s["type"], s["status"]) for s in scores["sinks"]] == [("kafka", "success"), ("python", "success")]
    with KafkaBroker(tmp_path / ".ldp/kafka") as broker:
        found = messages(spark, broker.bootstrap_servers, topic)
    assert sorted(m[0] for m in found) == ["s-1", "s-1", "s-2", "s-2"]  # the run's and publish's: at least once
    assert len({m[2]["ldp_run_id"] for m in found}) == 2
