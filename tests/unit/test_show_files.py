"""`show` and `history` without a JVM: a table's Delta files in the catalog of the run that wrote it last,
at its current version or an earlier one, and when Spark must answer instead. Tables are written with
deltalake (delta-rs) where the runners put them (see tests/spark/test_delta_storage.py and
tests/integration/test_show_runners.py for the real runners)."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, write_deltalake

from pipelines.catalog.reader import TimeTravel, UnknownVersion, stored_table
from pipelines.core.config import load_config
from pipelines.core.errors import UsageError
from pipelines.engine.show import Request, last_run, show_table, time_travel

CONFIG = """\
pipeline: {name: shop, schema: shop, transformations: ./transformations}
tables:
  - name: orders
    layer: bronze
    source: {type: files, format: json, path: ./landing}
"""


def delta(catalog: Path, name: str, rows: dict, run_id: str | None = None, schema: str = "shop") -> Path:
    """Commit `rows` as the table's next version (overwrite), as a runner would."""
    folder = catalog / "warehouse" / (f"{schema}.db" if schema != "default" else "") / name
    write_deltalake(str(folder), pa.table(rows), mode="overwrite", schema_mode="overwrite",
                    commit_properties=CommitProperties(custom_metadata={"userMetadata": run_id}) if run_id else None)
    return folder


def test_the_current_version_an_earlier_one_and_the_history(tmp_path):
    delta(tmp_path, "t", {"id": [1]}, "run-1")
    time.sleep(0.05)
    between = datetime.now(timezone.utc)
    time.sleep(0.05)
    delta(tmp_path, "t", {"id": [2, 3], "extra": ["x", "y"]}, "run-2")
    table = stored_table(tmp_path, "shop", "t")
    data, columns = table.open()
    assert data.to_table().column("id").to_pylist() == [2, 3] and columns == ["id", "extra"]
    assert table.open(TimeTravel(version=0))[0].to_table().to_pylist() == [{"id": 1}]
    assert table.open(TimeTravel(as_of=between))[0].to_table().to_pylist() == [{"id": 1}]
    assert [(c["version"], c["run_id"], c["operation"]) for c in table.history()] == [
        (1, "run-2", "WRITE"), (0, "run-1", "WRITE")]
    with pytest.raises(UnknownVersion) as unknown:
        table.open(TimeTravel(version=5))
    assert unknown.value.versions == [0, 1]
    with pytest.raises(UnknownVersion, match="did not exist yet at 2001-01-01 00:00:00 UTC"):
        table.open(TimeTravel(as_of=datetime(2001, 1, 1, tzinfo=timezone.utc)))


def test_the_default_schema_lives_in_the_warehouse_root_and_parquet_is_read_from_its_files(tmp_path):
    delta(tmp_path, "d", {"id": [7]}, schema="default")
    assert stored_table(tmp_path, "default", "d").open()[0].to_table().to_pylist() == [{"id": 7}]
    managed = tmp_path / "warehouse" / "shop.db" / "plain"
    (managed / "cur=EUR").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1]}), managed / "cur=EUR" / "part-0.parquet")
    (managed / "_SUCCESS").touch()
    data, columns = stored_table(tmp_path, "shop", "plain").open()
    assert columns == ["id", "cur"] and data.to_table().to_pylist() == [{"id": 1, "cur": "EUR"}]
    with pytest.raises(UnknownVersion, match="not a Delta table"):
        stored_table(tmp_path, "shop", "plain").open(TimeTravel(version=0))
    assert stored_table(tmp_path, "shop", "missing") is None


def test_as_of_takes_utc_text_or_iso_8601_and_excludes_version():
    assert time_travel(None, "2026-12-01 10:00:00").as_of == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert time_travel(None, "2026-12-01T11:00:00+01:00").as_of == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert time_travel(3, None).version == 3 and time_travel(None, None).current
    with pytest.raises(UsageError, match="--as-of takes"):
        time_travel(None, "yesterday")
    with pytest.raises(UsageError, match="exclude each other"):
        time_travel(1, "2026-12-01 10:00:00")


def project(tmp_path: Path) -> tuple:
    (tmp_path / "config.yml").write_text(CONFIG)
    state = tmp_path / ".ldp"
    delta(state, "orders", {"id": [1, 2], "name": ["a", "b"]}, "r1")
    delta(state / "sdp", "orders", {"id": [1, 2, 3], "name": ["a", "b", "c"]}, "r2")
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


def test_an_unknown_version_is_a_usage_error_listing_the_versions(tmp_path):
    config, state = project(tmp_path)
    delta(state, "orders", {"id": [9], "name": ["z"]})
    with pytest.raises(UsageError) as error:
        show_table(config, state, Request("orders", travel=TimeTravel(version=4)))
    assert "orders has no version 4" in error.value.render() and "versions: 0-1" in error.value.render()
    shown = show_table(config, state, Request("orders", travel=TimeTravel(version=0)))
    assert [r["id"] for r in shown.rows] == [1, 2]


def test_an_unknown_column_is_a_usage_error_and_unknown_sql_goes_to_spark(tmp_path, monkeypatch):
    config, state = project(tmp_path)
    with pytest.raises(UsageError, match="no column nope") as error:
        show_table(config, state, Request("orders", columns=("id", "nope")))
    assert "columns: id, name" in error.value.render()
    asked: list[Request] = []
    monkeypatch.setattr("pipelines.engine.show._spark_rows",
                        lambda config, catalog, request, version=None: asked.append(request) or (["id"], [], "shop.orders"))
    shown = show_table(config, state, Request("orders", where="name rlike 'a'"))  # Spark SQL DuckDB lacks
    assert shown.reader == "spark" and asked[0].where == "name rlike 'a'"


def test_a_table_whose_last_write_failed_shows_its_previous_version_from_the_files(tmp_path):
    config, state = project(tmp_path)
    record(state, "r3", "spark", 1_800_000_000, status="failed")  # a failed Delta write commits nothing
    shown = show_table(config, state, Request("orders"))
    assert shown.reader == "files" and [r["id"] for r in shown.rows] == [1, 2] and shown.run["run_id"] == "r3"


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
    (runs / "e.json").write_text(json.dumps({"run_id": "e", "finished_at": 5.0, "selection": ["orders"],
                                             "summary": {"runner": "restore"}}))  # restored in place
    assert last_run(runs, "orders")["run_id"] == "b"
    assert last_run(tmp_path / "none", "orders") is None


def test_a_table_delta_rs_cannot_open_is_replayed_from_its_log_and_left_to_spark_beyond_that(tmp_path, monkeypatch):
    """SDP writes some strings as `string collate UTF8_BINARY`, which delta-rs 1.6 cannot parse: the
    log's add/remove actions give the files of any version; what that replay does not cover (here a
    deletion vector) goes to Spark, at the version asked; the history comes from the log either way."""
    config, state = project(tmp_path)
    delta(state, "orders", {"id": [5], "name": ["e"]}, "r3")
    log = state / "warehouse" / "shop.db" / "orders" / "_delta_log"
    first = log / "00000000000000000000.json"
    first.write_text(first.read_text().replace('\\"type\\":\\"string\\"',
                                               '\\"type\\":\\"string collate UTF8_BINARY\\"'))
    assert "collate" in first.read_text()
    for version, ids in ((0, [1, 2]), (None, [5])):
        shown = show_table(config, state, Request("orders", travel=TimeTravel(version=version)))
        assert shown.reader == "files" and [r["id"] for r in shown.rows] == ids and shown.columns == ["id", "name"]
    newest = log / "00000000000000000001.json"
    newest.write_text(newest.read_text().replace('"add":{', '"add":{"deletionVector":{"storageType":"u"},'))
    asked: list = []
    monkeypatch.setattr("pipelines.engine.show._spark_rows", lambda config, catalog, request, version=None:
                        asked.append(version) or (["id"], [{"id": 5}], "shop.orders"))
    assert show_table(config, state, Request("orders", travel=TimeTravel(version=1))).reader == "spark"
    assert asked == [1]
    assert [c["run_id"] for c in stored_table(state, "shop", "orders").history()] == ["r3", "r1"]
