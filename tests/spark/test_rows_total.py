"""The Spark runner's counts mean what SDP's mean: `rows_written` is what this run wrote (a streaming
table: the rows it appended), `rows_total` what the table holds after it."""
from __future__ import annotations

from tests.spark.harness import Harness, add_file


def test_a_streaming_table_reports_the_rows_appended_and_its_total_apart(spark, tmp_path):
    add_file(tmp_path, "day1.csv", [(1, 10), (2, -5), (3, 7)])
    harness = Harness(spark, tmp_path)
    tables, _ = harness.run(mode="streaming")
    assert (tables["raw"].rows_written, tables["raw"].rows_total) == (3, 3)
    add_file(harness.root, "day2.csv", [(4, 100), (5, -1)])
    tables, _ = harness.run(mode="streaming")
    assert (tables["raw"].rows_written, tables["raw"].rows_total) == (2, 5)
    assert tables["raw"].to_dict()["rows_total"] == 5
    # a table rewritten whole (downstream of the stream) holds exactly what it wrote
    assert tables["clean"].rows_total == tables["clean"].rows_written == harness.table("clean").count()
