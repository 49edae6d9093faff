"""`flows:` in config.yml, the plan and the loader: pure, no Spark. Every bad value is a located config
error; the table reads what its flows read; streaming mode plans one append flow each; a flow reading
one input needs no function, one reading several does."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import load_config, parse_config, with_lines
from pipelines.core.errors import ConfigError
from pipelines.core.loader import load_transformations
from pipelines.core.outputs import AppendFlow, MaterializedView, QueryFlow, StreamingTable
from pipelines.core.plan import build_plan
from tests.conftest import write_project

FILES = "{type: files, format: json, path: ./in}"
CONFIG = f"""
pipeline: {{transformations: ./transformations}}
tables:
  - name: raw_us
    layer: bronze
    source: {FILES}
  - name: orders
    layer: bronze
    flows:
      - {{name: eu, source: {FILES}}}
      - {{name: us, depends_on: [raw_us]}}
      - {{name: backfill, once: true, source: {{type: table, table: main.archive.orders}}}}
  - name: totals
    layer: silver
    depends_on: [orders]
"""


def errors(text: str) -> str:
    """The config errors of `text` in streaming mode, located as the CLI prints them."""
    with pytest.raises(ConfigError) as caught:
        build_plan(parse_config(text, Path("config.yml")), mode="streaming")
    return str(ConfigError(with_lines(list(caught.value.problems), text)))


def test_the_table_reads_what_its_flows_read_and_streaming_plans_one_append_flow_each():
    config = parse_config(CONFIG, Path("config.yml"))
    assert config.table("orders").depends_on == ("raw_us",)
    streaming = build_plan(config, mode="streaming").table("orders")
    assert streaming.output == StreamingTable() and streaming.level == 1
    assert streaming.flows == (AppendFlow("eu", "orders"), AppendFlow("us", "orders"),
                               AppendFlow("backfill", "orders", once=True))
    assert [f.kind for f in streaming.flows] == ["append"] * 3
    assert streaming.flow_plan("eu").streaming and not streaming.flow_plan("backfill").streaming
    assert streaming.flow_plan("us").config.depends_on == ("raw_us",)
    batch = build_plan(config).table("orders")
    assert batch.output == MaterializedView() and batch.flows == (QueryFlow("orders", "orders"),)
    assert not batch.flow_plan("eu").streaming
    assert build_plan(config, mode="streaming").to_dict()["tables"][1]["flows"][2] == {
        "name": "backfill", "kind": "append"}


@pytest.mark.parametrize("change, expected", [
    (("      - {name: us, depends_on: [raw_us]}\n", "      - {name: us}\n"),
     ["config.yml:10", "table 'orders'", "key 'flows'", "flow 'us' reads nothing"]),
    (("      - {name: us, depends_on: [raw_us]}\n", "      - {name: eu, depends_on: [raw_us]}\n"),
     ["table 'orders'", "names eu more than once"]),
    (("    flows:\n", "    source: {type: files, format: json, path: ./x}\n    flows:\n"),
     ["table 'orders'", "written by its flows alone; source belong(s) on a flow"]),
    (("    flows:\n", "    depends_on: [totals]\n    flows:\n"),
     ["table 'orders'", "drop its depends_on ['totals']"]),
    (("{name: us, depends_on", "{name: raw_us, depends_on"),
     ["table 'orders'", "key 'flows.name'", "flow name is taken by table", "raw_us"]),
    (("{name: us, depends_on: [raw_us]}", "{name: us, depends_on: [nope]}"),
     ["table 'orders'", "key 'depends_on'", "'nope'"]),
    (("once: true, source: {type: table", "once: false, source: {type: table"),
     ["config.yml:10", "table 'orders'", "key 'flows.source.type'", "a table source cannot be read as a stream",
      "once: true"]),
    (("{name: us, depends_on: [raw_us]}", "{name: us, depends_on: [totals]}"),
     ["table 'orders'", "key 'flows.depends_on'", "reads totals as a stream", "materialized view"]),
    (("{name: eu, source:", "{name: eu, once: maybe, source:"),
     ["table 'orders'", "key 'flows.once'", "true or false"]),
])
def test_every_bad_flow_is_a_located_config_error(change, expected):
    old, new = change
    assert old in CONFIG
    message = errors(CONFIG.replace(old, new, 1))
    for part in expected:
        assert part in message, message


def test_a_batch_plan_allows_what_only_a_stream_could_not_read():
    text = CONFIG.replace("once: true, source: {type: table", "once: false, source: {type: table")
    assert build_plan(parse_config(text, Path("config.yml"))).table("orders").output == MaterializedView()


def test_a_flow_of_one_input_needs_no_function_and_one_of_several_does(tmp_path):
    text = CONFIG.replace("{name: us, depends_on: [raw_us]}", "{name: us, depends_on: [raw_us, totals_in]}")
    text += "  - {name: totals_in, layer: bronze, source: {type: files, format: json, path: ./t}}\n"
    modules = {"bronze/raw_us.py": "def raw_us(source):\n    return source\n",
               "silver/totals.py": "def totals(orders):\n    return orders\n",
               "bronze/totals_in.py": "def totals_in(source):\n    return source\n"}
    config = load_config(write_project(tmp_path, text, modules))
    with pytest.raises(ConfigError) as caught:
        load_transformations(config, config.tables)
    message = str(caught.value)
    assert "table 'orders'" in message and "flow 'us'" in message and "bronze/us.py" in message
    assert "flow 'eu'" not in message and "flow 'backfill'" not in message  # one input: used as it is
    (tmp_path / "transformations" / "bronze" / "us.py").write_text("def us(raw_us, totals_in):\n    return raw_us\n")
    functions = load_transformations(config, config.tables)
    assert {"eu", "us", "backfill", "raw_us", "totals", "totals_in"} == set(functions)
    assert "orders" not in functions  # the table has no function of its own
    assert functions["eu"](source="rows") == "rows"


def test_the_sdp_runner_refuses_a_batch_backfill_before_starting_with_exit_2(tmp_path):
    """Open-source SDP has no once flows and refuses a batch flow into a streaming table: a backfill
    from a table source is named, with the runner that can run it, before any JVM starts."""
    import subprocess
    import sys

    modules = {"bronze/raw_us.py": "def raw_us(source):\n    return source\n",
               "silver/totals.py": "def totals(orders):\n    return orders\n"}
    write_project(tmp_path, CONFIG, modules)
    (tmp_path / "in").mkdir()
    engine = str(Path(sys.executable).with_name("ldp_engine"))
    proc = subprocess.run([engine, "--runner", "sdp", "--mode", "streaming"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "table 'orders'" in proc.stderr and "flow 'backfill' is a once backfill of a table source" in proc.stderr
    assert "--runner spark" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / ".ldp" / "sdp").exists()
