"""describe_error without Spark: Spark's errors are duck-typed (Py4J text, a JVM object, query contexts)."""
from __future__ import annotations

from pipelines.core.errors import ConfigError, Problem, code_file, describe_error, error_cause, error_causes, redact

PY4J_TEXT = ("An error occurred while calling o57.load.\n"
             ": org.apache.spark.SparkException: header flag can be true or false.\n"
             "\tat org.apache.spark.sql.catalyst.csv.CSVOptions.getBool(CSVOptions.scala:54)\n"
             "Caused by: java.lang.IllegalArgumentException: yes is not a boolean\n"
             "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
             "Caused by: java.lang.RuntimeException: deeper\nsecond line of deeper\n")


class Py4JJavaError(Exception):
    """As py4j's: a useless first line, the Java exception's text (and stack) after it."""


class FakeJava:
    """A JVM exception object as Py4J hands it over: methods, not attributes."""

    def __init__(self, name: str, text: str, cause: "FakeJava | None" = None):
        self.name, self.text, self.cause = name, text, cause

    def getClass(self) -> "FakeJava":
        return self

    def getName(self) -> str:
        return self.name

    def toString(self) -> str:
        return self.text

    def getCause(self) -> "FakeJava | None":
        return self.cause


class Context:
    def __init__(self, call_site: str):
        self.call_site = call_site

    def callSite(self) -> str:
        return self.call_site


class NumberFormatException(Exception):
    """As PySpark's captured errors: a condition, the JVM origin and query contexts."""

    def __init__(self, message: str, origin: FakeJava, call_site: str):
        super().__init__(message)
        self._origin, self.call_site = origin, call_site

    def getCondition(self) -> str:
        return "CAST_INVALID_INPUT"

    def getQueryContext(self) -> list[Context]:
        return [Context(self.call_site)]


def test_a_py4j_error_shows_the_java_first_line_and_each_caused_by():
    assert describe_error(Py4JJavaError(PY4J_TEXT)) == (
        "org.apache.spark.SparkException: header flag can be true or false.; "
        "caused by: java.lang.IllegalArgumentException: yes is not a boolean; "
        "caused by: java.lang.RuntimeException: deeper")


def test_a_captured_spark_error_gives_condition_jvm_class_cause_chain_and_the_users_call_site():
    cause = FakeJava("java.lang.NumberFormatException", "java.lang.NumberFormatException: For input: 1x\n\tat x")
    origin = FakeJava("org.apache.spark.SparkNumberFormatException", "ignored", cause)
    message = ("[CAST_INVALID_INPUT] The value '1x' cannot be cast to \"INT\". SQLSTATE: 22018\n"
               "== DataFrame ==\n\"cast\" was called from\n/p/transformations/silver/clean.py:7\n")
    exc = NumberFormatException(message, origin, "/p/transformations/silver/clean.py:7")
    assert describe_error(exc, ["/p/transformations/silver/clean.py"]) == (
        "NumberFormatException: [CAST_INVALID_INPUT] The value '1x' cannot be cast to \"INT\". SQLSTATE: 22018 "
        "[org.apache.spark.SparkNumberFormatException]; caused by: java.lang.NumberFormatException: For input: 1x"
        " (at /p/transformations/silver/clean.py:7)")
    # a call site in another file (or Java's own) is not the user's line
    assert "(at" not in describe_error(exc, ["/p/transformations/silver/other.py"])


def _transformation(raw: object) -> object:
    raise ValueError("bad")


def test_a_raised_exception_names_the_innermost_frame_in_the_users_file():
    try:
        _transformation(None)
    except ValueError as exc:
        error = exc
    line = _transformation.__code__.co_firstlineno + 1
    assert describe_error(error, [__file__]) == f"ValueError: bad (at {__file__}:{line})"
    assert describe_error(error) == "ValueError: bad"  # no user file given: as before
    assert code_file(_transformation) == __file__


def test_a_jvm_that_cannot_answer_leaves_the_cause_out_and_never_raises():
    class Gone:
        def getClass(self):
            raise ConnectionError("JVM gone")

        getCause = getClass

    exc = RuntimeError("[X] boom")
    exc._origin = Gone()  # type: ignore[attr-defined]
    assert error_cause(exc) == "RuntimeError: [X] boom"


def test_engine_errors_render_as_before_and_plain_errors_keep_a_short_message():
    problem = Problem("unknown key 'tagz'", file="config.yml", key="tagz")
    assert describe_error(ConfigError(problem), ["x.py"]) == problem.render()
    assert describe_error(ValueError("two\nlines")) == "ValueError: two\nlines"
    assert describe_error(ValueError("x" * 600 + "\nmore")) == "ValueError: " + "x" * 600


def test_secrets_in_messages_are_masked():
    assert redact("connect postgresql://ana:s3cr3t@db:5432/x password=hunter2 token: abc.def") == (
        "connect postgresql://ana:***@db:5432/x password=*** token: ***")
    assert "hunter2" not in describe_error(ConnectionError("login failed, password=hunter2"))


def test_a_query_function_failing_in_a_pipeline_names_its_cause_and_line():
    from pipelines.ldp.query_errors import query_function_error

    try:
        _transformation(None)
    except ValueError as exc:
        error = query_function_error("clean", _transformation, exc)
    line = _transformation.__code__.co_firstlineno + 1
    assert error.render() == (f"{__file__}:{line}, table 'clean', key 'transformation': the transformation "
                              "failed while the pipeline built its plan: ValueError: bad")
    java = Py4JJavaError(PY4J_TEXT)
    assert query_function_error("raw", _transformation, java).problems[0].message.endswith(
        "plan: org.apache.spark.SparkException: header flag can be true or false.; "
        "caused by: java.lang.IllegalArgumentException: yes is not a boolean; "
        "caused by: java.lang.RuntimeException: deeper")


class StreamingQueryException(Exception):
    """A failed stream: its own error has no query context, its captured cause (`_cause`) has."""

    def __init__(self, message: str, origin: FakeJava, cause: BaseException):
        super().__init__(message)
        self._origin, self._cause = origin, cause


def test_a_failed_stream_names_its_causes_class_once_and_the_line_from_the_cause():
    cause_text = "[CAST_INVALID_INPUT] The value '1x' cannot be cast to \"INT\". SQLSTATE: 22018"
    java_cause = FakeJava("org.apache.spark.SparkNumberFormatException",
                          f"org.apache.spark.SparkNumberFormatException: {cause_text}")
    cause = NumberFormatException(cause_text, java_cause, "/p/transformations/bronze/raw.py:3")
    origin = FakeJava("org.apache.spark.sql.streaming.StreamingQueryException", "ignored", java_cause)
    exc = StreamingQueryException(f"[STREAM_FAILED] Query [id = 1] terminated with exception: {cause_text}",
                                  origin, cause)
    assert describe_error(exc, ["/p/transformations/bronze/raw.py"]) == (
        f"StreamingQueryException: [STREAM_FAILED] Query [id = 1] terminated with exception: {cause_text} "
        "[org.apache.spark.sql.streaming.StreamingQueryException]; "
        "caused by: org.apache.spark.SparkNumberFormatException (at /p/transformations/bronze/raw.py:3)")


class PythonException(Exception):
    """As PySpark's: a UDF's failure on a Python worker, the worker's traceback in the message."""


def test_a_udf_failing_on_a_worker_names_its_exception_and_the_users_line():
    message = ("\n  An exception was thrown from the Python worker. Please see the stack trace below.\n"
               "Traceback (most recent call last):\n"
               '  File "/venv/pyspark/worker.py", line 2000, in main\n    process()\n'
               '  File "/p/transformations/silver/clean.py", line 3, in bad\n'
               "    raise ValueError(f'bad value {v}')\n"
               "ValueError: bad value 10\n")
    assert describe_error(PythonException(message), ["/p/transformations/silver/clean.py"]) == (
        "PythonException: ValueError: bad value 10 (at /p/transformations/silver/clean.py:3)")


def test_a_job_aborted_by_a_udf_names_the_workers_exception():
    message = ("Job aborted due to stage failure: Task 0 in stage 3.0 failed 1 times, most recent failure: "
               "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
               '  File "/p/transformations/silver/clean.py", line 3, in bad\n'
               "ValueError: bad value 10\n\n\tat org.apache.spark.api.python.BasePythonRunner.handle(x.scala:1)\n")
    assert describe_error(RuntimeError(message), ["/p/transformations/silver/clean.py"]) == (
        "RuntimeError: ValueError: bad value 10 (at /p/transformations/silver/clean.py:3)")


def test_an_error_whose_text_needs_a_gone_jvm_is_still_described():
    class Captured(Exception):
        def __str__(self) -> str:
            raise AssertionError("SparkContext._jvm is None")

    assert describe_error(Captured("[X] what Python still holds")) == "Captured: [X] what Python still holds"


class SparkConnectGrpcException(Exception):
    """As PySpark's: the server's exception and its causes kept as a stack trace the message leaves out."""

    def __init__(self, message: str, trace: object):
        super().__init__(message)
        self.trace = trace

    def getStackTrace(self) -> str | None:  # noqa: N802 - pyspark's name
        if isinstance(self.trace, Exception):
            raise self.trace
        return self.trace  # type: ignore[return-value]

    def getCondition(self) -> str:  # noqa: N802 - pyspark's name
        return "PIPELINE_FAILED"


def test_a_spark_connect_error_names_the_causes_its_server_trace_holds():
    trace = ("org.apache.spark.SparkException: [PIPELINE_FAILED] run failed\n\tat o.a.X.y(X.scala:1)\n"
             "\tSuppressed: java.io.IOException: close failed\n"
             "\t\tCaused by: java.io.IOException: a suppressed error's cause, not the run's\n"
             "Caused by: org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] boom SQLSTATE: P0001\n"
             "\tat o.a.X.z(X.scala:2)\n")
    exc = SparkConnectGrpcException("[PIPELINE_FAILED] run failed", trace)
    assert error_cause(exc) == ("SparkConnectGrpcException: [PIPELINE_FAILED] run failed; caused by: "
                                "org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] boom SQLSTATE: P0001")
    assert error_causes(exc) == ["org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] boom SQLSTATE: P0001"]
    for unreadable in (None, ConnectionError("channel closed")):  # no trace, or none the client can read
        assert error_cause(SparkConnectGrpcException("[PIPELINE_FAILED] run failed", unreadable)) == \
            "SparkConnectGrpcException: [PIPELINE_FAILED] run failed"
