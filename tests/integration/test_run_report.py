"""The run report, opened in a real browser (Debian's chromium, driven by Playwright): the example's
content, no request leaving the file, no console error, readable without JavaScript and on a narrow
screen; a failed run's report shows the failure and the skipped tables. Screenshots go to
test-artifacts/."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.lakebase.connection import DSN_ENV
from tests.conftest import REPO, write_project

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # this machine's network is closed: no background calls


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "the report tests need Debian's chromium: apt-get install -y chromium (README)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Opened:
    """A report page in the browser, with every request and console message it caused."""

    def __init__(self, browser, path: Path, width: int = 1280, javascript: bool = True):
        self.context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def text(self, selector: str = "body") -> str:
        return self.page.inner_text(selector)

    def row(self, section: str, first_cell: str, caption: str = "") -> list[str]:
        """The cells of the row of `section` (of its table with `caption`) whose header cell is `first_cell`."""
        scope = f"#{section} table:has(caption:text-is('{caption}'))" if caption else f"#{section}"
        row = self.page.locator(f"{scope} tr", has=self.page.locator("th", has_text=first_cell)).first
        return [cell.strip() for cell in row.locator("th, td").all_inner_texts()]

    def rows(self, section: str, caption: str) -> list[list[str]]:
        """Every body row of `section`'s table with `caption`, as cell texts."""
        rows = self.page.locator(f"#{section} table:has(caption:text-is('{caption}')) tbody tr")
        return [[cell.strip() for cell in row.locator("th, td").all_inner_texts()] for row in rows.all()]

    def close(self) -> None:
        self.context.close()


def run(*args: str) -> dict:
    from pipelines.engine.cli import cli

    result = CliRunner().invoke(cli, ["run", *args, "--format", "json"])
    return json.loads(result.stdout)


def test_the_examples_report_shows_its_tables_checks_drift_and_sinks_offline(browser, example_project, lakebase,
                                                                             monkeypatch, spark):
    monkeypatch.setenv(DSN_ENV, lakebase.conninfo())
    args = ["--config", str(example_project / "config.yml"), "--state-dir", str(example_project / ".ldp")]
    run(*args)
    summary = run(*args)  # the second run has drift against the first, and a history
    assert summary["status"] == "success", summary
    page_path = Path(summary["report"])
    assert page_path.parent == example_project / ".ldp" / "reports" and page_path.stat().st_size < 2_000_000
    data = json.loads(page_path.with_suffix(".json").read_text())
    html = page_path.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html

    opened = Opened(browser, page_path)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        opened.page.screenshot(path=str(ARTIFACTS / "run-report.png"), full_page=True)
        assert opened.requests == [page_path.resolve().as_uri()]  # nothing but the file itself
        assert [m for m in opened.console if m[0] in ("error", "warning")] == []
        for table in summary["tables"]:
            cells = opened.row("tables", table["name"])
            assert cells[:4] == [table["name"], table["layer"], "success", f"{table['rows_written']:,}"], cells
        assert opened.row("quality", "email_valid")[:3] == ["email_valid", "error", "2"]
        assert opened.row("quality", "customer_known")[:3] == ["customer_known", "warn", "2"]
        assert "4 quarantined row(s) of customers_silver_quarantine" in opened.text("#quality")
        assert "email_valid: " in opened.text("#quality")  # each sampled row says which check it failed
        [orders] = [t for t in data["run"]["tables"] if t["name"] == "orders_silver"]
        drift = next(d for d in orders["monitor"]["drift"] if d.get("js_distance"))
        assert f"{drift['js_distance']:.4g}" in opened.row("profiles", drift["column"], "Drift of orders_silver")
        assert opened.row("sinks", "customers_gold")[1:5] == [
            "retail_inventory.customers_by_country", "replace", "4", "success"]
        assert opened.row("history", "orders_silver")[1] == "2"
        assert opened.row("plan", "customers_gold")[:2] == ["customers_gold", "unchanged"]  # read before the run
        assert "schema not compared" in opened.row("plan", "orders_silver")[2]  # no contract, not resolved
        rates = opened.rows("history", "Check failure rates")  # from the inventory: 2 of the 16 rows, each run
        assert ["customers_silver", "email_valid", "2", "", "12.5"] in rates, rates
        assert ["orders_silver", "customer_known", "2", "", "11.1"] in rates, rates
        graph = opened.page.locator("svg.dag")
        assert "orders_silver (success)" in graph.get_attribute("aria-label")
    finally:
        opened.close()

    without_script = Opened(browser, page_path, width=375, javascript=False)  # a phone, no JavaScript
    try:
        assert "customer_orders_gold" in without_script.text("#tables")
        overflow = without_script.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 375 + 1, "wide tables must scroll inside the page, not widen it"
        without_script.page.screenshot(path=str(ARTIFACTS / "run-report-narrow.png"))
    finally:
        without_script.close()


FAILING = """
pipeline: {schema: SCHEMA, transformations: ./transformations}
tables:
  - name: raw
    layer: bronze
    source: {type: files, format: csv, path: ./in, options: {header: true, inferSchema: true}}
  - {name: broken, layer: silver, depends_on: [raw]}
  - {name: after, layer: gold, depends_on: [broken]}
  - {name: beside, layer: gold, depends_on: [raw]}
"""


def test_a_failed_runs_report_shows_the_failure_and_what_it_skipped_and_can_be_rebuilt(browser, tmp_path, spark):
    from pipelines.engine.cli import cli

    write_project(tmp_path, FAILING.replace("SCHEMA", f"f{abs(hash(tmp_path)) % 10**6}"), {
        "bronze/raw.py": "def raw(source):\n    return source\n",
        "silver/broken.py": "def broken(raw):\n    raise ValueError('boom <b>not bold</b>')\n",
        "gold/after.py": "def after(broken):\n    return broken\n",
        "gold/beside.py": "def beside(raw):\n    return raw\n"})
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.csv").write_text("k,v\na,1\n")
    state = ["--state-dir", str(tmp_path / ".ldp")]
    summary = run("--config", str(tmp_path / "config.yml"), *state)
    assert summary["status"] == "failed"
    rebuilt = tmp_path / "rebuilt.html"
    result = CliRunner().invoke(cli, ["report", "--run", "latest", "--output", str(rebuilt), *state])
    assert result.exit_code == 0 and result.stdout.strip() == str(rebuilt), result.output
    for path in (Path(summary["report"]), rebuilt):
        opened = Opened(browser, path)
        try:
            assert opened.row("tables", "broken")[2] == "failed"
            assert "ValueError: boom <b>not bold</b>" in opened.text("#tables")  # escaped, shown as written
            after = opened.row("tables", "after")
            assert after[2] == "skipped" and "broken" in after[-1]
            assert opened.row("tables", "beside")[2] == "success"
            assert opened.row("plan", "broken")[:2] == ["broken", "create"]  # the state folder was empty
            assert "broken (failed)" in opened.page.locator("svg.dag").get_attribute("aria-label")
            assert opened.row("history", "broken")[1] == "1"  # from the run records, this run included
            assert [m for m in opened.console if m[0] == "error"] == []
        finally:
            opened.close()
    missing = CliRunner().invoke(cli, ["report", "--run", "nope", *state])
    assert missing.exit_code == 2 and "no such run in this state folder" in missing.output
