"""Files in more formats (xml, text, orc, binaryFile) and the file's `_metadata` (path, name, size,
modification time) on request, read by the Spark runner in batch and as a stream that picks up only
new files."""
from __future__ import annotations

import pytest

from tests.spark.harness import Harness

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: orders_xml
    layer: bronze
    source: {type: files, format: xml, path: ./xml, options: {rowTag: order}, schema: "id INT, amount DOUBLE",
             include_metadata: true}
  - {name: lines, layer: bronze, source: {type: files, format: text, path: ./text}}
  - {name: blobs, layer: bronze, source: {type: files, format: binaryFile, path: ./bin, schema: "path STRING,
     modificationTime TIMESTAMP, length BIGINT, content BINARY"}}
  - {name: orc_rows, layer: bronze, source: {type: files, format: orc, path: ./orc, schema: "id BIGINT"}}
"""
MODULES = {f"bronze/{name}.py": f"def {name}(source):\n    return source\n"
           for name in ("orders_xml", "lines", "blobs", "orc_rows")}


def add_files(spark, root, number: int) -> None:
    for folder in ("xml", "text", "bin"):
        (root / folder).mkdir(exist_ok=True)
    (root / "xml" / f"{number}.xml").write_text(
        f"<orders><order><id>{number}</id><amount>{number}.5</amount></order></orders>")
    (root / "text" / f"{number}.txt").write_text(f"line {number}a\nline {number}b\n")
    (root / "bin" / f"{number}.bin").write_bytes(bytes([number]) * 3)
    spark.range(number, number + 1).write.mode("append").orc(str(root / "orc"))


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_xml_text_binary_and_orc_files_with_metadata_over_two_runs(spark, tmp_path, mode):
    harness = Harness(spark, tmp_path, MODULES, config=CONFIG)
    for number in (1, 2):
        add_files(spark, tmp_path, number)
        tables, result = harness.run(mode=mode)
        assert result.status == "success", [t.error for t in tables.values()]
        if mode == "streaming":  # each run appends only the new file's rows
            assert {name: t.rows_written for name, t in tables.items()} == {
                "orders_xml": 1, "lines": 2, "blobs": 1, "orc_rows": 1}
    orders = harness.table("orders_xml")
    assert sorted((r.id, r.amount, r._metadata.file_name) for r in orders.collect()) == [
        (1, 1.5, "1.xml"), (2, 2.5, "2.xml")]
    assert {"file_path", "file_size", "file_modification_time"} <= set(orders.select("_metadata.*").columns)
    assert sorted(r.value for r in harness.table("lines").collect()) == ["line 1a", "line 1b", "line 2a", "line 2b"]
    assert sorted(bytes(r.content) for r in harness.table("blobs").collect()) == [b"\x01" * 3, b"\x02" * 3]
    assert sorted(r.id for r in harness.table("orc_rows").collect()) == [1, 2]
