"""Auto Loader's controls on a `files` source, run locally (the nearest thing Spark's file source does,
README "Sources"): `schema_hints` over the inferred schema in batch and streaming, and a rescued data
column that keeps a malformed record with its raw text instead of quarantining it."""
from __future__ import annotations

import pytest

from .harness import Harness

MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n"}


def config(source: str) -> str:
    return f"""
pipeline: {{schema: SCHEMA, transformations: ./transformations}}
tables:
  - name: raw
    layer: bronze
    source: {source}
"""


def types(harness: Harness) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in harness.table("raw").schema.fields}


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_schema_hints_override_the_inferred_types_and_add_the_columns_the_files_lack(spark, tmp_path, mode):
    harness = Harness(spark, tmp_path, MODULES, config=config(
        "{type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}, "
        "schema_hints: 'id STRING, Amount DECIMAL(10,2), note STRING'}"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.csv").write_text("id,amount,country\n1,10.5,PT\n2,20.25,ES\n")
    tables, result = harness.run(mode=mode)
    assert result.succeeded, result.to_dict()
    assert types(harness) == {"id": "string", "amount": "decimal(10,2)", "country": "string", "note": "string"}
    rows = sorted((r["id"], str(r["amount"]), r["note"]) for r in harness.table("raw").collect())
    assert rows == [("1", "10.50", None), ("2", "20.25", None)]
    (tmp_path / "in" / "2.csv").write_text("id,amount,country\n3,1.5,FR\n")
    tables, result = harness.run(mode=mode)
    assert result.succeeded and tables["raw"].rows_written == (1 if mode == "streaming" else 3)
    assert types(harness)["id"] == "string" and harness.table("raw").count() == 3


def test_a_rescued_data_column_keeps_a_malformed_record_with_its_raw_text_and_quarantines_nothing(spark, tmp_path):
    harness = Harness(spark, tmp_path, MODULES, config=config(
        "{type: files, format: json, path: ./in, schema: 'id INT, v STRING', rescued_data_column: _rescued_data}"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.json").write_text('{"id": 1, "v": "a"}\n{"id": "two", "v": "b"}\n')
    tables, result = harness.run()
    assert result.succeeded and tables["raw"].rows_written == 2 and not tables["raw"].rows_quarantined
    rows = sorted((r["id"] or 0, r["v"], r["_rescued_data"]) for r in harness.table("raw").collect())
    assert rows == [(0, "b", '{"id": "two", "v": "b"}'), (1, "a", None)]  # the fields that parse are kept
    assert not spark.catalog.tableExists(f"{harness.schema}.raw_quarantine")
