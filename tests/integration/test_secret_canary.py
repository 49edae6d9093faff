"""A secret shows nowhere a run writes: a CLI run whose JDBC password is a `${secret...}` reference (a
canary value), one table reading and one failing on the database, leaves the canary out of its output,
the run record, the run report (HTML and JSON), every row of the run inventory in a real PostgreSQL,
and every file under its state folder and of its tables; `validate --show-config` prints the reference, never the value."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from click.testing import CliRunner

from pipelines.engine.cli import cli
from pipelines.lakebase.connection import DSN_ENV
from tests.conftest import write_project
from tests.spark import test_jdbc_source as jdbc

CANARY = "canary-7f3a-PW"


def test_a_secret_is_in_no_output_record_report_inventory_row_or_file(
        spark, tmp_path, tcp_postgres, shop_orders, lakebase, monkeypatch):
    config = jdbc.config(tcp_postgres).replace("password_env: SHOP_PASSWORD", "password: '${secret.shop.password}'")
    config = config.replace("SCHEMA", "canary").replace(
        "pipeline: {", "lakebase: {inventory: true, meta_schema: canary_meta}\npipeline: {")
    config = config.replace("FROM public.shop_orders WHERE", "FROM public.no_such_table WHERE")  # big_orders fails
    write_project(tmp_path, config, jdbc.MODULES)
    monkeypatch.setenv("LDP_SECRET_SHOP_PASSWORD", CANARY)
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    state = ["--config", str(tmp_path / "config.yml"), "--state-dir", str(tmp_path / ".ldp")]

    result = CliRunner().invoke(cli, ["run", *state, "--format", "json"])
    summary = json.loads(result.stdout)
    tables = {t["name"]: t for t in summary["tables"]}
    assert result.exit_code == 3 and tables["orders_full"]["status"] == "success", result.output
    assert "no_such_table" in tables["big_orders"]["error"]  # the failure is reported, the password is not
    assert CANARY not in result.output

    with lakebase.connect() as conn:
        inventory = [json.dumps(row, default=str) for name in ("runs", "table_runs", "check_results", "sink_runs")
                     for row in conn.execute(f"SELECT * FROM canary_meta.{name}").fetchall()]
    assert len(inventory) >= 4 and any("no_such_table" in row for row in inventory)
    assert not [row for row in inventory if CANARY in row]
    warehouse = Path(urlparse(spark.conf.get("spark.sql.warehouse.dir")).path) / "canary.db"
    written = [p for folder in (tmp_path / ".ldp", warehouse) for p in folder.rglob("*") if p.is_file()]
    assert {p.suffix for p in written} >= {".html", ".json", ".parquet"}  # report, records, tables
    assert not [p for p in written if CANARY.encode() in p.read_bytes()]

    shown = CliRunner().invoke(cli, ["validate", *state[:2], "--show-config"])
    assert shown.exit_code == 0 and "${secret.shop.password}" in shown.output and CANARY not in shown.output
