"""`show` without a JVM: which files hold a table's current rows (the layout storage.py writes, SDP's
managed tables, a streaming sink's log), which run's catalog is read, and when Spark must answer instead.
Files are written with pyarrow in the layouts the runners leave (see tests/integration/test_show_runners.py
for the real runners)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.catalog.reader import SPLIT_FLAG, stored_table
from pipelines.core.config import load_config
from pipelines.core.errors import UsageError
from pipelines.engine.show import Request, last_run, show_table

CONFIG = """\
pipeline: {name: shop, schema: shop, transformations: ./transformations}
tables:
  - name: orders
    layer: bronze
    source: {type: files, format: json, path: ./landing}
    on_error: quarantine
    expectations:
      - {name: id_set, criticality: error, check: {function: is_not_null, arguments: {column: id}}}
"""


def version(root: Path, name: str, rows: dict, stamp: str, complete: bool = True, sub: str = "") -> Path:
    folder = root / name / f"v-{stamp}-0123abcd" / sub
    folder.mkdir(parents=True)
    pq.write_table(pa.table(rows), folder / "part-00000-x.snappy.parquet")
    if complete:
        (root / name / f"v-{stamp}-0123abcd" / "_SUCCESS").touch()
    return folder


def test_the_newest_complete_of_two_versions_is_current_and_three_are_left_to_spark(tmp_path):
    tables = tmp_path / "tables" / "shop"
    version(tables, "t", {"id": [1]}, "20261201T000000")
    version(tables, "t", {"id": [2]}, "20261202T000000")
    data, columns = stored_table(tmp_path, "shop", "t").open()
    assert data.to_table().column("id").to_pylist() == [2] and columns == ["id"]
    version(tables, "t", {"id": [3]}, "20261203T000000")  # a swap that failed leaves a third
    assert stored_table(tmp_path, "shop", "t") is None


def test_an_unfinished_newest_version_is_left_to_spark(tmp_path):
    tables = tmp_path / "tables" / "shop"
    version(tables, "t", {"id": [1]}, "20261201T000000")
    version(tables, "t", {"id": [2]}, "20261202T000000", complete=False)
    assert stored_table(tmp_path, "shop", "t") is None


def test_a_split_version_holds_the_table_without_errors_and_its_quarantine(tmp_path):
    tables = tmp_path / "tables" / "shop"
    version(tables, "orders", {"id": [1], "_errors": [None]}, "20261201T000000", sub=f"{SPLIT_FLAG}=false/cur=EUR")
    (tables / "orders" / "v-20261201T000000-0123abcd" / f"{SPLIT_FLAG}=true" / "cur=USD").mkdir(parents=True)
    pq.write_table(pa.table({"id": [None], "_errors": [["id_set"]]}),
                   tables / "orders" / "v-20261201T000000-0123abcd" / f"{SPLIT_FLAG}=true" / "cur=USD" / "p.parquet")
    main = stored_table(tmp_path, "shop", "orders", main_drop=("_errors",))
    data, columns = main.open()
    assert columns == ["id", "cur"] and data.to_table(columns=columns).to_pylist() == [{"id": 1, "cur": "EUR"}]
    quarantine = stored_table(tmp_path, "shop", "orders_quarantine", quarantine_of="orders")
    data, columns = quarantine.open()
    assert columns == ["id", "_errors", "cur"] and data.to_table().column("cur").to_pylist() == ["USD"]


def test_a_streaming_sink_log_names_the_committed_files_only(tmp_path):
    table = tmp_path / "warehouse" / "shop.db" / "events"
    log = table / "_spark_metadata"
    log.mkdir(parents=True)
    for i in range(4):
        pq.write_table(pa.table({"id": [i]}), table / f"part-{i}.parquet")

    def entry(i: int, action: str = "add") -> str:
        return json.dumps({"path": (table / f"part-{i}.parquet").as_uri(), "isDir": False, "action": action})

    (log / "1.compact").write_text("v1\n" + entry(0) + "\n" + entry(1) + "\n")
    (log / "0").write_text("v1\n" + entry(3) + "\n")  # compacted into 1.compact (part-3 then deleted)
    (log / "2").write_text("v1\n" + entry(2) + "\n" + entry(0, "delete") + "\n")
    data, _ = stored_table(tmp_path, "shop", "events").open()  # part-3 was never committed after compaction
    assert sorted(data.to_table().column("id").to_pylist()) == [1, 2]


def project(tmp_path: Path) -> tuple:
    (tmp_path / "config.yml").write_text(CONFIG)
    state = tmp_path / ".ldp"
    spark_rows = {"id": [1, 2], "name": ["a", "b"], "_errors": [None, None]}
    version(state / "tables" / "shop", "orders", spark_rows, "20261201T000000", sub=f"{SPLIT_FLAG}=false")
    sdp = state / "sdp" / "warehouse" / "shop.db" / "orders"
    sdp.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), sdp / "part-0.parquet")
    return load_config(tmp_path / "config.yml"), state


def record(state: Path, run_id: str, runner: str, finished: float, status: str = "success") -> None:
    runs = state / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"run_id": run_id, "started_at": finished - 5, "finished_at": finished,
                       "selection": ["orders"],
                       "summary": {"runner": runner, "tables": [{"name": "orders", "status": status}]}})
    (runs / f"{run_id}.json").write_text(text)
    (runs / "latest.json").write_text(text)


def test_show_reads_the_catalog_of_the_runner_that_wrote_last(tmp_path):
    config, state = project(tmp_path)
    record(state, "r1", "spark", 1_800_000_000)
    shown = show_table(config, state, Request("orders"))
    assert [r["id"] for r in shown.rows] == [1, 2] and shown.columns == ["id", "name"]
    assert shown.run["run_id"] == "r1" and shown.run["runner"] == "spark" and shown.reader == "files"
    record(state, "r2", "sdp", 1_800_000_100)
    shown = show_table(config, state, Request("orders", where="id > 1 AND name <> 'b'", columns=("name",)))
    assert shown.rows == [{"name": "c"}] and shown.run["runner"] == "sdp"
    assert shown.run["finished_at"] == "2027-01-15 08:01:40 UTC" and shown.table == "shop.orders"


def test_an_unknown_column_is_a_usage_error_and_unknown_sql_goes_to_spark(tmp_path, monkeypatch):
    config, state = project(tmp_path)
    with pytest.raises(UsageError, match="no column nope") as error:
        show_table(config, state, Request("orders", columns=("id", "nope")))
    assert "columns: id, name" in error.value.render()
    asked: list[Request] = []
    monkeypatch.setattr("pipelines.engine.show._spark_rows",
                        lambda config, catalog, request: asked.append(request) or (["id"], [], "shop.orders"))
    shown = show_table(config, state, Request("orders", where="name rlike 'a'"))  # Spark SQL DuckDB lacks
    assert shown.reader == "spark" and asked[0].where == "name rlike 'a'"


def test_a_table_that_failed_in_the_last_run_is_read_through_spark(tmp_path, monkeypatch):
    config, state = project(tmp_path)
    record(state, "r1", "spark", 1_800_000_000, status="failed")  # its swap may have left a version behind
    monkeypatch.setattr("pipelines.engine.show._spark_rows",
                        lambda config, catalog, request: (["id"], [{"id": 9}], "shop.orders"))
    shown = show_table(config, state, Request("orders"))
    assert shown.reader == "spark" and shown.rows == [{"id": 9}] and shown.run["run_id"] == "r1"


def test_the_newest_run_that_selected_the_table_is_the_one_read(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for run_id, finished, selection in (("a", 1.0, ["orders"]), ("b", 2.0, ["orders"]), ("c", 3.0, ["other"])):
        (runs / f"{run_id}.json").write_text(json.dumps({"run_id": run_id, "finished_at": finished,
                                                         "selection": selection}))
    os.replace(runs / "c.json", runs / "latest.json")
    assert last_run(runs, "orders")["run_id"] == "b"
    assert last_run(runs, "other")["run_id"] == "c"
    (runs / "d.json").write_text(json.dumps({"run_id": "d", "finished_at": 4.0, "selection": ["orders"],
                                             "summary": {"runner": "pipeline"}}))  # wrote on Databricks
    assert last_run(runs, "orders")["run_id"] == "b"
    assert last_run(tmp_path / "none", "orders") is None


def test_the_split_flag_is_the_one_the_quality_package_writes():
    from pipelines.quality.materialize import QUARANTINE_FLAG

    assert SPLIT_FLAG == QUARANTINE_FLAG
