"""The report page as text: every recorded value escaped, nothing to fetch, pictures with text
alternatives, and graceful gaps (no monitor, no sinks, no history, unknown counts)."""
from __future__ import annotations

import re

from pipelines.core.results import failure_rates
from pipelines.report.html import render
from pipelines.report.svg import dag, quantile_strip, sparkline


def data(**run: object) -> dict:
    tables = [{"name": "a", "layer": "bronze", "status": "failed", "rows_written": None, "seconds": 0.2,
               "error": "<script>alert('x')</script>", "checks": [], "monitor": None}]
    return {"run_id": "r1", "pipeline": "p<1>", "mode": "batch", "started_at": 1.0, "finished_at": 3.5,
            "graph": {"a": {"layer": "bronze", "depends_on": []}}, "samples": {}, "history": {},
            "run": {"status": "failed", "runner": "pipeline", "tables": tables, "errors": ["run <error>"], **run}}


def test_every_value_is_escaped_and_nothing_is_fetched():
    page = render(data(sinks="not written by --runner pipeline"))
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "p&lt;1&gt;" in page and "run &lt;error&gt;" in page
    assert not re.search(r"(src|href)=", page)  # no image, script, stylesheet or link to load
    assert "default-src 'none'" in page  # and the browser is told so
    assert "No table of this run has a monitor." in page and "not written by --runner pipeline" in page
    assert "No earlier runs recorded." in page and ">–<" in page  # an unknown row count


def test_an_additive_contracts_new_columns_are_named_with_their_table():
    page = render(data())
    assert "new columns" not in page
    run = data()
    run["run"]["tables"][0].update(status="success", error=None, new_columns=["note", "<b>"])
    assert ('<p class="meta">new columns, not in columns: (additive contract): note, &lt;b&gt;</p>'
            in render(run))


def test_pictures_have_text_alternatives_and_survive_degenerate_values():
    graph = dag({"a": {"layer": "bronze", "depends_on": []}, "b": {"layer": "gold", "depends_on": ["a", "gone"]}},
                {"a": "success", "b": "skipped"}, {"b": "upstream table 'a' <failed>"})
    assert 'aria-label="Pipeline graph: a (success); b (skipped)"' in graph and graph.count("<path") == 1
    assert "<title>b: skipped (upstream table &#x27;a&#x27; &lt;failed&gt;)</title>" in graph
    assert quantile_strip([5, 5, 5, 5, 5]).startswith("<svg")  # a constant column: no division by zero
    assert quantile_strip(None) == "" and quantile_strip([1, None, 2, 3, 4]) == ""
    assert 'aria-label="rows: 3, 4"' in sparkline([None, 3, 4], "rows") and sparkline([None], "rows") == ""


def test_each_checks_failure_rate_over_the_recent_runs():
    table = {"rows_written": 12, "rows_quarantined": 4, "rows_dropped": None, "checks": [
        {"name": "a", "failed": 2}, {"name": "b", "failed": 3, "passed": 9}, {"name": "c", "failed": None}]}
    assert failure_rates(table) == {"a": 2 / 16, "b": 3 / 12}  # over the rows seen; passed + failed if counted
    assert failure_rates({"rows_written": 0, "checks": [{"name": "a", "failed": 0}]}) == {}  # unknown, not 0%
    runs = [{"run_id": str(n), "started_at": n, "status": "success", "rows_written": 5, "seconds": 1.0,
             "failure_rates": rates} for n, rates in enumerate([{"a": 0.5}, {}, {"a": 0.25, "b": 0.0}])]
    page = render({**data(), "history": {"t": runs}})
    assert 'aria-label="t a failure %: 50, 25"' in page and 'aria-label="t b failure %: 0"' in page
    assert '<td>a</td><td class="n">2</td>' in page and '<td class="n">25.0</td>' in page
    assert "Check failure rates" not in render({**data(), "history": {"t": [{**runs[1]}]}})


def test_the_plan_read_before_the_run_is_shown_destructive_steps_in_red():
    planned = [{"table": "t", "action": "schema change (breaking)", "destructive": True,
                "details": ["column 'a': bigint -> string", "<b>"]},
               {"table": "u", "action": "create", "destructive": False, "details": []}]
    page = render({**data(), "planned": planned})
    assert ('<th scope="row">t</th><td><span class="badge" style="background:#cf222e">schema change (breaking)'
            "</span></td><td>column &#x27;a&#x27;: bigint -&gt; string<br>&lt;b&gt;</td>") in page
    assert 'style="background:#1a7f37">create</span>' in page
    assert "No local plan: a Databricks pipeline update" in render(data())  # runner: pipeline
    assert "No plan was recorded for this run." in render({**data(), "run": {**data()["run"], "runner": "spark"}})
    assert "the plan could not be read: &lt;x&gt;" in render({**data(), "planned": "the plan could not be read: <x>"})
