"""Malformed csv and json records go to the bronze table's quarantine as the check `malformed_record`,
with their raw text, counted like a failing check, on both local runners; `on_error` decides, as for
any check. Each test counts every landed line: in the table or in its quarantine, none lost."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import write_project

CONFIG = """\
pipeline:
  name: landing
  schema: SCHEMA
  transformations: ./transformations
tables:
  - name: events
    layer: bronze
    on_error: ON_ERROR
    source: SOURCE
    expectations:
      - {name: id_positive, criticality: warn, check: {function: sql_expression, arguments: {expression: "1 = 1"}}}
"""
CSV_SOURCE = '{type: files, format: csv, path: ./landing, schema: "id INT, name STRING", options: {header: true}}'
JSON_SOURCE = '{type: files, format: json, path: ./landing, schema: "id INT, name STRING"}'
BAD_CSV = {"2,b,extra": "one field too many", "x,c": "not an INT", "4": "one field missing"}
KEEP = "from pyspark.sql import functions as F\n\n" \
       "def events(source):\n    return source.withColumn('_source_file', F.col('_metadata.file_name'))\n"


def project(root: Path, source: str, landed: str, name: str, on_error: str = "quarantine",
            module: str = KEEP) -> Path:
    """A one-table project; its check names no source column, so the malformed-record check alone reads
    the raw files' columns (Spark refuses a query reading only `_corrupt_record`)."""
    root.mkdir(parents=True, exist_ok=True)
    schema = f"m{abs(hash(root)) % 10**6}"
    config = CONFIG.replace("SCHEMA", schema).replace("ON_ERROR", on_error).replace("SOURCE", source)
    write_project(root, config, {"bronze/events.py": module})
    (root / "landing").mkdir(exist_ok=True)
    (root / "landing" / name).write_text(landed)
    return root


def run_spark(spark, root: Path, *args: str) -> tuple[int, dict, dict]:
    from pipelines.engine.cli import cli

    result = CliRunner().invoke(cli, ["run", "--config", str(root / "config.yml"), "--format", "json",
                                      "--state-dir", str(root / ".ldp"), *args])
    record = json.loads((root / ".ldp" / "runs" / "latest.json").read_text())
    return result.exit_code, json.loads(result.stdout), record


def table_entry(summary: dict) -> dict:
    [events] = [t for t in summary["tables"] if t["name"] == "events"]
    return events


def malformed(entry: dict) -> int | None:
    return {c["name"]: c["failed"] for c in entry["checks"]}.get("malformed_record")


def quarantined_raw(spark, schema: str) -> list[str]:
    rows = spark.sql(f"SELECT explode(_errors) AS e FROM {schema}.events_quarantine").collect()
    return sorted(r.e.message for r in rows if r.e.name == "malformed_record")


def schema_of(root: Path) -> str:
    return next(line.split(":")[1].strip() for line in (root / "config.yml").read_text().splitlines()
                if line.strip().startswith("schema:"))


def test_a_malformed_csv_line_is_quarantined_with_its_raw_text_on_the_spark_runner(spark, tmp_path):
    root = project(tmp_path, CSV_SOURCE, "id,name\n1,a\n" + "".join(f"{line}\n" for line in BAD_CSV), "a.csv")
    code, summary, record = run_spark(spark, root)
    assert code == 0, summary
    for where in (summary, record["summary"]):  # the JSON summary and the run record say the same
        entry = table_entry(where)
        assert (entry["status"], entry["rows_written"], entry["rows_quarantined"], malformed(entry)) == \
            ("success", 1, 3, 3), entry
    schema = schema_of(root)
    assert quarantined_raw(spark, schema) == sorted(
        f"malformed csv record (it does not parse with the declared schema): {line}" for line in BAD_CSV)
    table = spark.table(f"{schema}.events")
    assert "_corrupt_record" not in table.columns and [r.id for r in table.collect()] == [1]
    quarantine = spark.table(f"{schema}.events_quarantine")
    assert "_corrupt_record" not in quarantine.columns
    assert table.count() + quarantine.count() == 4  # every landed line is somewhere


def test_a_malformed_json_record_is_quarantined_and_a_type_mismatch_too(spark, tmp_path):
    bad = ['{"id": 2, "name": ', '{"id": "x", "name": "c"}']
    root = project(tmp_path, JSON_SOURCE, '{"id": 1, "name": "a"}\n' + "\n".join(bad) + "\n", "a.json")
    code, summary, record = run_spark(spark, root)
    assert code == 0, summary
    assert malformed(table_entry(record["summary"])) == 2 and table_entry(summary)["rows_written"] == 1
    assert quarantined_raw(spark, schema_of(root)) == sorted(
        f"malformed json record (it does not parse with the declared schema): {line}" for line in bad)


def test_on_error_fail_fails_the_table_naming_the_check_and_drop_counts_the_dropped_rows(spark, tmp_path):
    root = project(tmp_path / "fail", CSV_SOURCE, "id,name\n1,a\nx,c\n", "a.csv", on_error="fail")
    code, summary, record = run_spark(spark, root)
    entry = table_entry(record["summary"])
    assert code == 3 and entry["status"] == "failed" and "malformed_record: 1" in entry["error"], entry
    assert table_entry(summary)["error"] == entry["error"]

    root = project(tmp_path / "drop", CSV_SOURCE, "id,name\n1,a\nx,c\n", "a.csv", on_error="drop")
    code, summary, _ = run_spark(spark, root)
    entry = table_entry(summary)
    assert code == 0 and (entry["rows_written"], entry["rows_dropped"]) == (1, 1), entry


def test_a_streaming_run_quarantines_malformed_lines_of_each_new_file(spark, tmp_path):
    root = project(tmp_path, CSV_SOURCE, "id,name\n1,a\nx,c\n", "a.csv")
    code, summary, _ = run_spark(spark, root, "--mode", "streaming")
    assert code == 0, summary
    assert (table_entry(summary)["rows_written"], malformed(table_entry(summary))) == (1, 1)
    (root / "landing" / "b.csv").write_text("id,name\n2,b\n3,c,extra\n")
    code, summary, _ = run_spark(spark, root, "--mode", "streaming")
    assert (code, table_entry(summary)["rows_written"], malformed(table_entry(summary))) == (0, 1, 1), summary
    assert len(quarantined_raw(spark, schema_of(root))) == 2


def test_a_transformation_that_drops_the_corrupt_record_column_fails_saying_how_to_keep_it(spark, tmp_path):
    module = "def events(source):\n    return source.select('id', 'name')\n"
    root = project(tmp_path, CSV_SOURCE, "id,name\n1,a\nx,c\n", "a.csv", module=module)
    code, summary, _ = run_spark(spark, root)
    error = table_entry(summary)["error"]
    assert code == 3 and "has no _corrupt_record column" in error and "source.options.mode" in error, error


def test_an_explicit_mode_is_the_users_choice_nothing_is_flagged(spark, tmp_path):
    source = CSV_SOURCE.replace("{header: true}", "{header: true, mode: DROPMALFORMED}")
    root = project(tmp_path, source, "id,name\n1,a\nx,c\n", "a.csv")
    code, summary, _ = run_spark(spark, root)
    entry = table_entry(summary)
    assert code == 0 and entry["rows_written"] == 1 and malformed(entry) is None, entry


def ldp_engine(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("ldp_engine")), *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900)


def test_a_malformed_csv_line_is_quarantined_with_its_raw_text_on_the_sdp_runner(tmp_path):
    root = project(tmp_path, CSV_SOURCE, "id,name\n1,a\n" + "".join(f"{line}\n" for line in BAD_CSV), "a.csv")
    done = ldp_engine(root, "run", "--runner", "sdp", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    record = json.loads((root / ".ldp" / "runs" / "latest.json").read_text())
    for where in (summary, record["summary"]):
        entry = table_entry(where)
        assert (entry["status"], entry["rows_written"], entry["rows_quarantined"], malformed(entry)) == \
            ("success", 1, 3, 3), entry
    shown = ldp_engine(root, "show", "events_quarantine", "--format", "json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    rows = json.loads(shown.stdout)["rows"]
    messages = sorted(e["message"] for row in rows for e in row["_errors"] if e["name"] == "malformed_record")
    assert messages == sorted(
        f"malformed csv record (it does not parse with the declared schema): {line}" for line in BAD_CSV)
    assert "_corrupt_record" not in rows[0]
    main = json.loads(ldp_engine(root, "show", "events", "--format", "json").stdout)
    assert [r["id"] for r in main["rows"]] == [1] and "_corrupt_record" not in main["columns"]
