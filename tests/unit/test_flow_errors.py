"""A failed flow's error from SDP's event message: the first message and each cause, as the Spark runner
reports it. The samples are events a local SDP run (pyspark 4.2, Delta) sent, verbatim."""
from __future__ import annotations

from pipelines.ldp.flow_errors import flow_error, run_error

WRITE = ("Error: [TASK_WRITE_FAILED] Task failed while writing rows to file:/tmp/sdpexp/proj/.ldp/sdp/warehouse/"
         "{table}. SQLSTATE: 58030\n")
HEAD = "[TASK_WRITE_FAILED] Task failed while writing rows to file:/tmp/sdpexp/proj/.ldp/sdp/warehouse/{table}. " \
       "SQLSTATE: 58030"
RAISED = ("Flow 'spark_catalog.default.ev_clean_a' has FAILED.\n" + WRITE.format(table="ev_clean_a")
          + "[USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001")
CAST = ("Flow 'spark_catalog.default.ev_clean_a' has FAILED.\n" + WRITE.format(table="ev_clean_a")
        + "[CAST_INVALID_INPUT] The value 'x' of the type \"STRING\" cannot be cast to \"INT\" because it is "
        "malformed. Correct the value as per the syntax, or change its target type. Use `try_cast` to tolerate "
        "malformed input and return NULL instead. SQLSTATE: 22018\n"
        "== DataFrame ==\n"
        "\"cast\" was called from\n"
        "/tmp/sdpexp/proj/transformations/silver/ev_clean_a.py:6\n")
UDF = ("Flow 'spark_catalog.default.ev_clean_b' has FAILED.\n" + WRITE.format(table="ev_clean_b")
       + "[PYTHON_EXCEPTION] An exception was thrown from the Python worker: Traceback (most recent call last):\n"
       "  File \"/tmp/sdpexp/proj/transformations/silver/ev_clean_b.py\", line 6, in bad\n"
       "    raise ValueError(f'udf says no to {v}')\n"
       "ValueError: udf says no to r\n"
       " SQLSTATE: 38000")


def test_a_write_task_failure_names_the_users_error_as_its_cause():
    assert flow_error(RAISED) == HEAD.format(table="ev_clean_a") + \
        "; caused by: [USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001"


def test_a_failed_cast_names_its_condition_and_the_line_that_built_it_not_the_query_context():
    assert flow_error(CAST) == HEAD.format(table="ev_clean_a") + (
        "; caused by: [CAST_INVALID_INPUT] The value 'x' of the type \"STRING\" cannot be cast to \"INT\" because it "
        "is malformed. Correct the value as per the syntax, or change its target type. Use `try_cast` to tolerate "
        "malformed input and return NULL instead. SQLSTATE: 22018 "
        "(at /tmp/sdpexp/proj/transformations/silver/ev_clean_a.py:6)")


def test_a_failed_udf_names_the_python_exception_not_its_traceback():
    assert flow_error(UDF) == HEAD.format(table="ev_clean_b") + (
        "; caused by: [PYTHON_EXCEPTION] An exception was thrown from the Python worker: "
        "ValueError: udf says no to r")


def test_one_message_stays_one_and_a_repeated_or_null_cause_is_left_out():
    assert flow_error("Flow 'x' has FAILED.\nError: [UNRESOLVED_COLUMN] x") == "[UNRESOLVED_COLUMN] x"
    assert flow_error("Flow 'x' has FAILED.\nError: java.lang.RuntimeException: [X] a\n[X] a\nnull") == \
        "java.lang.RuntimeException: [X] a"
    assert flow_error("Flow 'x' has FAILED.") is None
    assert flow_error("Flow 'x' has FAILED.\nError: ") is None


class ConnectError(Exception):
    """Shaped as pyspark's SparkConnectGrpcException: the server's cause chain kept as its stack trace."""

    def __init__(self, message: str, trace: str | None):
        super().__init__(message)
        self.trace = trace

    def getStackTrace(self) -> str | None:  # noqa: N802 - pyspark's name
        return self.trace


def test_a_failed_run_names_the_causes_the_server_sent():
    trace = ("org.apache.spark.SparkException\n\tat org.apache.spark.sql.errors.X.y(X.scala:1)\n"
             "Caused by: org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001\n"
             "\tat org.apache.spark.sql.errors.X.z(X.scala:2)")
    head = HEAD.format(table="ev_clean_a")
    assert run_error(ConnectError(head + "\n", trace)) == \
        head + "; caused by: org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] boom-ev SQLSTATE: P0001"
    assert run_error(ConnectError(head, None)) == head
    assert run_error(ConnectError("[X] a", "X\nCaused by: java.lang.RuntimeException: [X] a")) == "[X] a"
    assert run_error(ValueError()) == "ValueError"


def test_a_secret_the_error_echoes_is_masked():
    assert flow_error("Flow 'x' has FAILED.\nError: [X] a\n[Y] cannot reach jdbc://bob:hunter2@db/x") == \
        "[X] a; caused by: [Y] cannot reach jdbc://bob:***@db/x"
