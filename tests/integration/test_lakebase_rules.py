"""Versioned data-quality rules in a real PostgreSQL: publish only on change, history, activate, diff, and
runs enforcing the active version with `pipeline.rules_source: lakebase` (recorded in the inventory)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.core.rules import RuleVersion, diff_rules, fingerprint, from_json, to_json
from pipelines.lakebase.connection import DSN_ENV
from tests.conftest import write_project
from tests.integration.conftest import rows

CONFIG = """
pipeline: {schema: SCHEMA, transformations: ./transformations, rules_source: SOURCE}
lakebase: {meta_schema: SCHEMA_meta, inventory: true}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}
    expectations:
      - {name: v_above_1, criticality: error, check: {function: sql_expression, arguments: {expression: "v > 1"}}}
  - name: doubled
    layer: silver
    depends_on: [raw]
    expectations:
      - {name: k_set, criticality: error, check: {function: is_not_null, arguments: {column: k}}}
"""
STRICTER = '{name: v_above_6, criticality: error, check: {function: sql_expression, arguments: {expression: "v > 6"}}}'


@pytest.fixture
def project(tmp_path: Path, lakebase, monkeypatch) -> tuple[list[str], str]:
    schema = f"r{abs(hash(tmp_path)) % 10**6}"
    write_project(tmp_path, CONFIG.replace("SCHEMA", schema).replace("SOURCE", "config"), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "silver/doubled.py": "def doubled(raw):\n    return raw.selectExpr('k', 'v * 2 AS v')\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\nb,5\nc,7\n")
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    return ["--config", str(tmp_path / "config.yml"), "--state-dir", str(tmp_path / ".ldp")], schema


def ldp(*args: str) -> tuple[int, str, str]:
    from pipelines.engine.cli import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def edit(args: list[str], old: str, new: str) -> None:
    config = Path(args[1])
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))


def test_publish_stores_a_version_only_when_the_checks_changed_and_keeps_one_active(project, lakebase):
    args, schema = project
    code, out, _ = ldp("rules", "publish", *args, "--format", "json")
    assert code == 0 and json.loads(out)["tables"] == [
        {"table": "raw", "version": 1, "changed": True, "checks": 1},
        {"table": "doubled", "version": 1, "changed": True, "checks": 1}]
    code, out, _ = ldp("rules", "publish", *args, "--table", "raw")
    assert code == 0 and out == "raw: unchanged, version 1 (1 checks)\n"
    edit(args, '{name: v_above_1, criticality: error', '{name: v_above_1, criticality: warn')
    code, out, _ = ldp("rules", "publish", *args, "--table", "raw")
    assert code == 0 and out == "raw: published version 2 (1 checks)\n"
    assert rows(lakebase, f"SELECT table_name, version, is_active, created_by, metadata->>'checks' "
                          f"FROM {schema}_meta.dq_rules_events ORDER BY 1, 2") == [
        ("doubled", 1, True, "postgres", "1"), ("raw", 1, False, "postgres", "1"), ("raw", 2, True, "postgres", "1")]
    code, out, _ = ldp("rules", "history", *args, "--table", "raw", "--format", "json")
    history = json.loads(out)["versions"]
    assert [(v["version"], v["active"]) for v in history] == [(2, True), (1, False)]
    assert history[0]["rules"][0]["criticality"] == "warn"
    assert history[0]["fingerprint"] == fingerprint(history[0]["rules"])


def test_activate_rolls_back_and_diff_says_what_publishing_would_change(project, lakebase):
    args, schema = project
    ldp("rules", "publish", *args)
    edit(args, '{name: v_above_1, criticality: error, check: {function: sql_expression, arguments: '
               '{expression: "v > 1"}}}', STRICTER)
    assert ldp("rules", "publish", *args)[0] == 0
    code, out, _ = ldp("rules", "diff", *args, "--table", "raw", "--version", "1")
    assert code == 0 and out.startswith("+ v_above_6\n- v_above_1\n--- raw version 1\n+++ raw ")
    assert '-      expression: v > 1\n' in out and '+      expression: v > 6\n' in out
    assert ldp("rules", "diff", *args, "--table", "raw")[1] == "raw: config checks are the same as version 2\n"
    code, out, _ = ldp("rules", "activate", *args, "--table", "raw", "--version", "1")
    assert code == 0 and out == "raw: version 1 is active (was 2)\n"
    assert rows(lakebase, f"SELECT version FROM {schema}_meta.dq_rules_events WHERE table_name = 'raw' "
                          "AND is_active") == [(1,)]
    diff = json.loads(ldp("rules", "diff", *args, "--table", "raw", "--format", "json")[1])
    assert diff == {"table": "raw", "version": 1, "same": False, "added": ["v_above_6"], "removed": ["v_above_1"],
                    "changed": []}
    code, _, err = ldp("rules", "activate", *args, "--table", "raw", "--version", "9")
    assert code == 2 and "table 'raw' has no published version 9 (versions: 1, 2)" in err
    code, _, err = ldp("rules", "history", *args, "--table", "nope")
    assert code == 0
    code, _, err = ldp("rules", "activate", *args, "--table", "nope", "--version", "1")
    assert code == 1 and "--table names an unknown table (got 'nope'); tables: raw, doubled" in err


def test_invalid_checks_are_never_published_nor_activated(project, lakebase):
    args, schema = project
    edit(args, "function: is_not_null", "function: is_not_nul")
    code, _, err = ldp("rules", "publish", *args)
    assert code == 1 and "table 'doubled'" in err and "is_not_nul" in err
    assert rows(lakebase, f"SELECT to_regclass('{schema}_meta.dq_rules_events')") == [(None,)]
    edit(args, "function: is_not_nul", "function: is_not_null")
    ldp("rules", "publish", *args)
    with lakebase.connect() as conn:  # a version written by another tool (e.g. the rule manager UI)
        conn.execute(f"INSERT INTO {schema}_meta.dq_rules_events (id, table_name, version, rules, is_active) VALUES "
                     "(gen_random_uuid(), 'raw', 2, '[{\"criticality\": \"error\", \"check\": {\"function\": "
                     "\"no_such_function\"}}]', FALSE)")
    code, _, err = ldp("rules", "activate", *args, "--table", "raw", "--version", "2")
    assert code == 1 and f"lakebase {schema}_meta.dq_rules_events, table 'raw', key 'version 2'" in err
    assert rows(lakebase, f"SELECT version FROM {schema}_meta.dq_rules_events WHERE table_name = 'raw' "
                          "AND is_active") == [(1,)]


def test_runs_enforce_the_active_published_version_and_the_inventory_records_it(project, lakebase, spark):
    args, schema = project
    edit(args, "rules_source: config", "rules_source: lakebase")

    def run() -> dict[str, int]:
        code, out, _ = ldp("run", *args, "--format", "json")
        summary = json.loads(out)
        assert code == 0, summary
        return {t["name"]: t["rows_quarantined"] for t in summary["tables"]}

    assert run() == {"raw": 1, "doubled": 0}  # nothing published yet: the config's checks
    ldp("rules", "publish", *args, "--table", "raw")
    edit(args, '{name: v_above_1, criticality: error, check: {function: sql_expression, arguments: '
               '{expression: "v > 1"}}}', STRICTER)
    assert run() == {"raw": 1, "doubled": 0}  # version 1 (v > 1) is enforced, not the edited config
    ldp("rules", "publish", *args, "--table", "raw")
    assert run() == {"raw": 2, "doubled": 0}  # version 2: v > 6
    ldp("rules", "activate", *args, "--table", "raw", "--version", "1")
    assert run() == {"raw": 1, "doubled": 0}  # rolled back without touching the config
    assert rows(lakebase, f"SELECT table_name, rules_version FROM {schema}_meta.table_runs t JOIN {schema}_meta.runs r "
                          "USING (run_id) ORDER BY r.started_at, table_name") == [
        ("doubled", None), ("raw", None), ("doubled", None), ("raw", 1), ("doubled", None), ("raw", 2),
        ("doubled", None), ("raw", 1)]


def test_an_invalid_active_version_stops_the_run_before_spark_starts(project, lakebase):
    args, schema = project
    edit(args, "rules_source: config", "rules_source: lakebase")
    ldp("rules", "publish", *args)
    with lakebase.connect() as conn:
        conn.execute(f"UPDATE {schema}_meta.dq_rules_events SET rules = '[{{\"check\": {{\"function\": "
                     "\"is_not_null\"}}]' WHERE table_name = 'doubled'")
    started = time.monotonic()
    code, out, err = ldp("run", *args, "--dry-run")
    assert code == 1 and f"lakebase {schema}_meta.dq_rules_events, table 'doubled', key 'version 1'" in err
    assert time.monotonic() - started < 20


def test_an_unreachable_rule_store_is_a_run_time_failure_without_a_secret(project, monkeypatch):
    args, _ = project
    edit(args, "rules_source: config", "rules_source: lakebase")
    monkeypatch.setenv(DSN_ENV, "postgresql://ana:hunter2@127.0.0.1:1/app?connect_timeout=2")
    code, out, err = ldp("run", *args, "--dry-run")
    assert code == 3 and "cannot read the published rules: OperationalError" in err and "hunter2" not in err + out
    code, out, err = ldp("rules", "publish", *args)
    assert code == 3 and "the rule store failed: OperationalError" in err and "hunter2" not in err + out


def test_the_sdp_driver_enforces_the_versions_the_cli_read(project, spark, tmp_path):
    """The SDP driver is another process: it gets the CLI's versions in a file, never reads them again."""
    from types import SimpleNamespace

    from pipelines.engine.sdp_driver import load_registrar

    args, _ = project
    edit(args, "rules_source: config", "rules_source: lakebase")
    published = {"raw": RuleVersion("raw", 4, [{"name": "v_above_6", "criticality": "error", "check": {
        "function": "sql_expression", "arguments": {"expression": "v > 6"}}}])}
    (tmp_path / "rules.json").write_text(to_json(published))
    spec = SimpleNamespace(configuration={"ldp.config": args[1], "ldp.rules_file": str(tmp_path / "rules.json")})
    registrar = load_registrar(spark, spec, ["raw", "doubled"])
    assert registrar.plan.config.table("raw").expectations == tuple(published["raw"].rules)
    assert registrar.plan.config.table("doubled").expectations[0]["name"] == "k_set"
    assert from_json(to_json(published))["raw"].rules == published["raw"].rules


def test_fingerprints_ignore_key_order_and_diffs_match_checks_by_name():
    a = [{"name": "x", "criticality": "warn", "check": {"function": "is_not_null", "arguments": {"column": "k"}}}]
    b = [{"check": {"arguments": {"column": "k"}, "function": "is_not_null"}, "criticality": "warn", "name": "x"}]
    assert fingerprint(a) == fingerprint(b) != fingerprint([{**a[0], "criticality": "error"}])
    changes = diff_rules(a, [{**a[0], "criticality": "error"}, {"check": {"function": "is_unique"}}])
    assert changes.to_dict() == {"added": ["#2 (is_unique)"], "removed": [], "changed": ["x"]}
    assert diff_rules(a, b).same
