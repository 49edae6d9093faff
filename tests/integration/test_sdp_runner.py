"""`--runner sdp` against `--runner spark`: the same example gives the same tables, in batch and in
streaming mode, and nothing either local runner starts listens beyond 127.0.0.1."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipelines.engine.project import load_project
from pipelines.engine.runner import SparkRunner
from pipelines.engine.storage import TableStore
from tests.comparison import assert_same_table

TABLES = ["customers_bronze", "orders_bronze", "customers_silver", "customers_silver_quarantine",
          "orders_silver", "orders_silver_quarantine", "customers_gold", "customer_orders_gold"]


def run_watching_ports(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run a command; meanwhile record every address a process of its tree listens on."""
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listening: set[str] = set()
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for proc in tree:
            try:
                listening |= {c.laddr.ip for c in proc.net_connections(kind="inet")
                              if c.status == psutil.CONN_LISTEN}
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr), listening


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return (mapped or address).is_loopback


def ldp_engine(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ldp_engine")), *args]


def spark_runner_tables(spark, project_dir: Path, mode: str, schema: str) -> None:
    project = load_project(project_dir / "config.yml", mode=mode, schema=schema)
    store = TableStore(spark, project.plan.pipeline, project_dir / ".ldp-spark")
    assert SparkRunner(spark, project.plan, project.functions, store).run().status == "success"


def sdp_table(spark, project_dir: Path, name: str):
    """A table the SDP run wrote (its own catalog under .ldp/sdp), read from its managed location."""
    return spark.read.parquet(str(project_dir / ".ldp/sdp/warehouse/retail.db" / name))


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_sdp_and_spark_runners_produce_identical_tables(spark, example_project, mode):
    proc, listening = run_watching_ports(ldp_engine("--runner", "sdp", "--mode", mode, "--format", "json"),
                                         example_project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == "success" and summary["runner"] == "sdp"
    assert {t["name"]: (t["status"], t["rows_written"]) for t in summary["tables"]} == {
        "customers_bronze": ("success", 17), "orders_bronze": ("success", 19),
        "customers_silver": ("success", 12), "customers_gold": ("success", 4),
        "orders_silver": ("success", 15), "customer_orders_gold": ("success", 12)}
    assert {"name", "layer", "status", "rows_written", "rows_quarantined", "seconds"} <= set(summary["tables"][0])
    by_name = {t["name"]: t for t in summary["tables"]}
    assert (by_name["orders_silver"]["rows_quarantined"], by_name["customers_silver"]["rows_quarantined"]) == (3, 4)
    assert {c["name"]: c["failed"] for c in by_name["orders_silver"]["checks"]} == {  # as the Spark runner's
        "amount_not_null": 1, "amount_not_negative": 1, "customer_id_not_null": 1, "customer_known": 2,
        "not_late": 1}
    assert listening and all(map(is_loopback, listening)), listening

    schema = f"cmp_{mode}"
    spark_runner_tables(spark, example_project, mode, schema)
    for name in TABLES:
        assert_same_table(sdp_table(spark, example_project, name), spark.table(f"{schema}.{name}"))


def test_spark_runner_listens_on_loopback_only(example_project):
    proc, listening = run_watching_ports(ldp_engine("--select", "customers_bronze"), example_project)
    assert proc.returncode == 0, proc.stderr
    assert listening and all(map(is_loopback, listening)), listening


def test_sdp_dry_run_resolves_the_graph_without_writing(example_project):
    proc = subprocess.run(ldp_engine("--runner", "sdp", "--dry-run", "--format", "json"), cwd=example_project,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "valid"
    assert not (example_project / ".ldp/sdp/warehouse/retail.db/customers_bronze").exists()
