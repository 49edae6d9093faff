"""The SDP process seen from outside, without Spark: the cause of a process that died, from its
output (shapes copied from real runs of pyspark 4.2), the free loopback port each run takes, and the
client pointed at that port."""
from __future__ import annotations

import json
import socket

import pytest

from pipelines.core.errors import UsageError
from pipelines.ldp.sdp_process import bind_failed, describe_failure, failure_cause, forced_port, free_port

BIND = ("java.net.BindException: Failed to bind to address /127.0.0.1:35689: Service "
        "'org.apache.spark.sql.connect.service.SparkConnectService' failed after 0 retries (starting from 35689)!")
PY4J = "py4j.protocol.Py4JJavaError: An error occurred while calling None.org.apache.spark.api.java.JavaSparkContext."
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/work/main/pipelines/engine/sdp_driver.py", line 50, in run',
    "    spark = builder.getOrCreate()",
    "            ^^^^^^^^^^^^^^^^^^^^^",
    '  File "/venv/pyspark/python/lib/py4j-0.10.9.9-src.zip/py4j/protocol.py", line 327, in get_return_value',
    PY4J,
    ": " + BIND,
    "\tat org.sparkproject.connect.grpc.netty.NettyServer.start(NettyServer.java:341)",
    "\tat java.base/java.lang.Thread.run(Thread.java:840)",
    "",
]
NOISE = ["WARNING: Using incubator modules: jdk.incubator.vector",
         "Warning: Ignoring non-Spark config property: ldp.mode",
         "26/12/03 13:31:52 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform...",
         "26/12/03 13:31:54 ERROR SparkContext: Error initializing SparkContext."]


def test_the_cause_is_each_exceptions_first_line_python_first_whatever_spark_logged_before():
    quiet = NOISE[:3] + TRACEBACK  # JVM logs quiet: Java's exception only inside the Py4J error
    verbose = NOISE + [BIND, "\tat org.apache.spark.SparkContext.<init>(SparkContext.scala:594)"] + TRACEBACK
    assert failure_cause(quiet) == failure_cause(verbose) == [PY4J, BIND]
    assert describe_failure(1, quiet) == (
        f"the Spark Declarative Pipelines process failed (exit code 1): {PY4J} | {BIND}")


def test_every_caused_by_is_kept_with_its_class_in_order_and_long_lines_are_cut():
    long = "x" * 900
    lines = ['Exception in thread "main" org.apache.spark.SparkException: Invalid Spark URL: spark://bad',
             "\tat org.apache.spark.rpc.RpcEndpointAddress$.apply(RpcEndpointAddress.scala:66)",
             f"Caused by: java.io.IOException: {long}",
             "\t... 12 more",
             "Caused by: java.lang.IllegalArgumentException",
             "Traceback (most recent call last):",
             '  File "driver.py", line 3, in <module>',
             "    raise ValueError('bad conf: spark.sql.shuffle.partitions=-1')",
             "ValueError: bad conf: spark.sql.shuffle.partitions=-1",
             "second line of the message is not the cause"]
    causes = failure_cause(lines)
    assert causes[0] == "ValueError: bad conf: spark.sql.shuffle.partitions=-1"
    assert causes[1] == "org.apache.spark.SparkException: Invalid Spark URL: spark://bad"
    assert causes[2].startswith("Caused by: java.io.IOException: xxx") and causes[2].endswith("...")
    assert len(causes[2]) == len("Caused by: ") + 500
    assert causes[3:] == ["Caused by: java.lang.IllegalArgumentException"]


def test_without_an_exception_the_last_lines_are_the_message():
    lines = ["older output"] + NOISE + ["", "Killed"]  # the last 5 non-empty lines
    assert failure_cause(lines) == []
    assert describe_failure(137, lines) == (
        "the Spark Declarative Pipelines process exited with code 137 without a result: "
        + " | ".join(NOISE + ["Killed"]))
    assert describe_failure(1, []) == "the Spark Declarative Pipelines process exited with code 1 without a result"


def test_a_taken_port_is_recognised_and_a_free_one_is_bindable():
    assert bind_failed(TRACEBACK) and not bind_failed(NOISE)
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free right after it was picked
    assert forced_port({"LDP_SDP_PORT": " 4711 "}) == 4711 and forced_port({}) is None
    with pytest.raises(UsageError, match="LDP_SDP_PORT must be a port number"):
        forced_port({"LDP_SDP_PORT": "70000"})


def test_the_client_connects_to_the_port_the_runner_gave_the_server(monkeypatch):
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    from pipelines.ldp.sdp_levels import connect_to_launcher_port, merge_launcher_conf

    monkeypatch.setattr(DefaultChannelBuilder, "default_port", DefaultChannelBuilder.default_port)
    assert DefaultChannelBuilder("sc://localhost").endpoint == "localhost:15002"  # pyspark's own
    env = {"PYSPARK_REMOTE_INIT_CONF_LEN": "2",
           "PYSPARK_REMOTE_INIT_CONF_0": json.dumps({"spark.connect.grpc.binding.port": "41234"}),
           "PYSPARK_REMOTE_INIT_CONF_1": json.dumps({"spark.ui.enabled": "false"})}
    merge_launcher_conf(env)
    assert connect_to_launcher_port(env) == 41234
    assert DefaultChannelBuilder("sc://localhost").endpoint == "localhost:41234"
    assert DefaultChannelBuilder("sc://localhost:15003").endpoint == "localhost:15003"  # explicit wins
    assert connect_to_launcher_port({"PYSPARK_REMOTE_INIT_CONF_LEN": "0"}) is None


@pytest.mark.parametrize("line", ["Error: nothing", "  File \"x.py\", line 1", "ERROR SparkContext: x"])
def test_lines_that_only_look_like_errors_are_not_causes(line):
    assert failure_cause([line]) == []
