"""The CLI without Spark: dry-run, validate, graph, exit codes, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.engine.cli import cli

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "config.yml")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_seed_selection_dry_run_as_json():
    result = invoke("--tags", "daily,critical", "--mode", "batch", "--dry-run", "--format", "json",
                    "--config", CONFIG)
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["order"] == ["customers_bronze"] and plan["levels"] == [["customers_bronze"]]


def test_dry_run_says_what_the_run_would_change_in_the_local_catalog(tmp_path):
    result = invoke("--select", "customers_silver", "--dry-run", "--format", "json", "--config", CONFIG,
                    "--state-dir", str(tmp_path))
    assert json.loads(result.stdout)["changes"] == [{"table": "customers_silver", "action": "create",
                                                     "destructive": False,
                                                     "details": ["with customers_silver_quarantine"]}]
    text = invoke("--select", "customers_silver", "--dry-run", "--config", CONFIG, "--state-dir", str(tmp_path))
    assert text.stdout.endswith(f"plan against {tmp_path}:\n + customers_silver: create\n"
                                "       with customers_silver_quarantine\nno destructive change\n")


def test_dry_run_text_lists_levels():
    result = invoke("--dry-run", "--config", CONFIG)
    assert result.exit_code == 0
    assert "8 table(s) in 4 level(s)" in result.stdout and "level 4:" in result.stdout


def test_match_any_and_select_upstream():
    result = invoke("--tags", "gold,critical", "--match", "any", "--dry-run", "--format", "json",
                    "--config", CONFIG)
    assert set(json.loads(result.stdout)["order"]) == {"customers_bronze", "customers_gold",
                                                       "customer_orders_gold"}
    result = invoke("run", "--select", "+customers_silver", "--dry-run", "--format", "json", "--config", CONFIG)
    assert json.loads(result.stdout)["order"] == ["customers_bronze", "customers_silver"]


def test_usage_errors_exit_2():
    assert invoke("--mode", "turbo", "--config", CONFIG).exit_code == 2
    assert invoke("--max-parallel", "0", "--config", CONFIG).exit_code == 2
    assert invoke("graph", "--format", "png", "--config", CONFIG).exit_code == 2


def test_empty_selection_exits_1_listing_tags_and_tables():
    result = invoke("--tags", "weekly", "--dry-run", "--config", CONFIG)
    assert result.exit_code == 1
    assert "matches no table (tags weekly)" in result.stderr
    assert "tags in the config: bronze, critical, daily, events, gold, silver" in result.stderr
    assert "customer_orders_gold" in result.stderr


def test_validate_ok_and_json():
    assert "is valid (8 tables)" in invoke("validate", "--config", CONFIG).stdout
    assert json.loads(invoke("validate", "--format", "json", "--config", CONFIG).stdout)["status"] == "valid"


def test_invalid_config_exits_1_with_every_problem(tmp_path):
    bad = tmp_path / "config.yml"
    bad.write_text("tables:\n- {name: a, layer: silver, depends_on: [b]}\n"
                   "- {name: b, layer: silver, depends_on: [a], tagz: [x]}\n")
    result = invoke("validate", "--config", str(bad), "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "invalid"
    assert any("unknown key 'tagz'" in e and "did you mean 'tags'" in e for e in payload["errors"])
    bad.write_text("tables:\n- {name: a, layer: silver, depends_on: [b]}\n"
                   "- {name: b, layer: silver, depends_on: [a]}\n")
    result = invoke("validate", "--config", str(bad))
    assert result.exit_code == 1
    assert "dependency cycle: a → b → a" in result.stderr
    assert "transformation module not found" in result.stderr


def test_missing_config_file_exits_1(tmp_path):
    result = invoke("validate", "--config", str(tmp_path / "missing.yml"))
    assert result.exit_code == 1 and "config file not found" in result.stderr


def test_graph_formats():
    mermaid = invoke("graph", "--config", CONFIG).stdout
    assert "subgraph silver" in mermaid and "orders_bronze --> orders_silver" in mermaid
    assert "critical" in mermaid
    dot = invoke("graph", "--format", "dot", "--config", CONFIG).stdout
    assert 'subgraph cluster_gold' in dot and '"customers_silver" -> "customers_gold";' in dot


@pytest.mark.parametrize("launcher", [
    ["-m", "pipelines.ldp_engine"], ["pipelines/ldp_engine.py"]])
def test_entry_points_print_errors_without_traceback(launcher, tmp_path):
    bad = tmp_path / "config.yml"
    bad.write_text("tables:\n  - name: a\n    layer: [bronze\n")
    proc = subprocess.run([sys.executable, *launcher, "validate", "--config", str(bad)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "invalid YAML" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, *launcher, "--dry-run", "--format", "json"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["order"]) == 8


GRPC_IMPORT_WATCH = """
import os, runpy, sys
class Watch:  # records the fork setting gRPC reads when it is first imported
    def find_spec(self, name, path=None, target=None):
        if name == "grpc":
            print("grpc imported, GRPC_ENABLE_FORK_SUPPORT=%s" % os.environ.get("GRPC_ENABLE_FORK_SUPPORT"),
                  file=sys.stderr)
        return None
sys.meta_path.insert(0, Watch())
if sys.argv[1] == "cli":
    sys.argv = ["ldp_engine", "validate", "--config", sys.argv[2]]
    runpy.run_module("pipelines.ldp_engine", run_name="__main__")
else:  # the ldp_spark pytest plugin, loaded before any test or conftest, then a test's own gRPC use
    import pipelines.testing.plugin
    import grpc
"""


@pytest.mark.parametrize("entry", ["cli", "pytest_plugin"])
def test_grpc_is_first_imported_with_its_fork_handlers_off(entry):
    # gRPC reads the setting once, at its first import (checking DQX expectations imports it); with its fork
    # handlers on, the embedded PostgreSQL's initdb, forked beside the SDP run's Connect session, died of SIGSEGV
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    proc = subprocess.run([sys.executable, "-c", GRPC_IMPORT_WATCH, entry, CONFIG], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "grpc imported, GRPC_ENABLE_FORK_SUPPORT=false" in proc.stderr, proc.stderr[-2000:]


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ldp_engine")
    proc = subprocess.run([str(script), "--mode", "turbo"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "turbo" in proc.stderr


def test_catalog_and_schema_overrides_are_validated():
    result = invoke("--schema", "retail_dev", "--catalog", "dev", "--dry-run", "--format", "json",
                    "--config", CONFIG)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["catalog"] == "dev" and json.loads(result.stdout)["schema"] == "retail_dev"
    result = invoke("--schema", "bad-name", "--dry-run", "--config", CONFIG)
    assert result.exit_code == 1 and "--schema" in result.stderr and "bad-name" in result.stderr


def test_graph_takes_the_selection_options():
    """`graph` draws what a run with the same options would run: the selected tables and their edges."""
    gold = invoke("graph", "--tags", "gold", "--config", CONFIG).stdout
    assert "customers_gold" in gold and "customer_orders_gold" in gold
    assert "orders_bronze" not in gold and "-->" not in gold  # upstream tables and their edges are left out
    upstream = invoke("graph", "--format", "dot", "--select", "+customers_silver", "--exclude", "customers_bronze",
                      "--config", CONFIG).stdout
    assert '"customers_silver"' in upstream and "customers_bronze" not in upstream and "orders" not in upstream
    both = invoke("graph", "--tags", "gold,critical", "--match", "any", "--config", CONFIG).stdout
    assert "customers_bronze" in both and "customers_silver" not in both
    unknown = invoke("graph", "--select", "nope", "--config", CONFIG)
    assert unknown.exit_code == 1 and "nope" in unknown.stderr
