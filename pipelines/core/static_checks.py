"""What a transformation cannot do inside a pipeline query function, found by reading its source (`ast`).

A pipeline (SDP locally, Lakeflow on Databricks) calls each query function once to build the table's
plan and runs it later, so the function may build a DataFrame but not look at it (`.columns`,
`.schema`, `.dtypes`), run it (`.count()`, `.collect()`, `.toPandas()`...), or sum "all numeric
columns" (`groupBy(...).sum()` with no column: Spark Connect needs the schema to know them). This
module finds those calls by a static look at the transformation function and the module-level
helpers it calls, with no Spark, and names `file:line` and the rewrite.

**Warnings, not errors, on every runner.** All of it is legal on `--runner spark`, and a static look
cannot know types: `x.count()` on a list or `pdf.columns` on a pandas frame look the same as on a
DataFrame. So a finding never blocks a run: `validate` and every load of the project (a run, a
`--dry-run`) report it as a warning naming the runners where it fails (sdp, pipeline), before Spark
starts. Where the code really fails, the SDP runner still stops before writing anything, naming the
same line (`pipelines.ldp.query_errors`). Bodies of nested functions and lambdas (UDFs, pandas code
run on workers) are not looked at. A line ending in `# ldp: allow` is not reported.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .errors import Problem

ANALYZING = frozenset({"columns", "schema", "dtypes"})  # DataFrame properties that read the schema
ANALYZING_CALLS = frozenset({"printSchema", "explain", "isEmpty", "inputFiles"})
RUNNING = frozenset({"count", "collect", "toPandas", "toArrow", "take", "head", "first", "tail", "show",
                     "toLocalIterator", "foreach", "foreachPartition", "toJSON", "cache", "persist",
                     "checkpoint", "localCheckpoint"})
GROUPING = frozenset({"groupBy", "groupby", "rollup", "cube", "pivot", "groupingSets"})
NUMERIC_AGGREGATIONS = frozenset({"sum", "avg", "mean", "min", "max"})
FAILS_ON = "sdp and pipeline runners"
ALLOW = "# ldp: allow"


@dataclass(frozen=True)
class Finding:
    line: int
    message: str
    hint: str


def pipeline_warnings(file: Path, function: str, table: str) -> list[Problem]:
    """Every finding in `function` of `file` (and the module's helpers it calls), as located Problems."""
    try:
        source = file.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(file))
    except (OSError, SyntaxError, ValueError):
        return []  # the loader reports a module that cannot be read
    lines = source.splitlines()
    return [Problem(f"{f.message}: fails on the {FAILS_ON} (a pipeline builds the plan first and runs it later)",
                    file=str(file), line=f.line, table=table, key="transformation", hint=f.hint)
            for f in find_in_module(tree, function)
            if not lines[f.line - 1].rstrip().endswith(ALLOW)]


def find_in_module(tree: ast.Module, function: str) -> list[Finding]:
    """Findings in `function` and in the module-level functions it calls, transitively, each once."""
    top = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    todo, seen, findings = [function], set(), []
    while todo:
        name = todo.pop()
        node = top.get(name)
        if node is None or name in seen or (name != function and node.decorator_list):
            continue  # decorated helpers (UDFs) run on the workers
        seen.add(name)
        body = list(_own_nodes(node))
        grouped = _grouped_names(body)
        called = {id(n.func) for n in body if isinstance(n, ast.Call)}  # `spark.read.schema(...)` is no read
        findings.extend(f for n in body if (f := _finding(n, grouped, called)) is not None)
        todo.extend(n.func.id for n in body if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
    return sorted(set(findings), key=lambda f: (f.line, f.message))


def _own_nodes(function: ast.AST) -> list[ast.AST]:
    """The nodes of a function's body, without the bodies of the functions and lambdas nested in it."""
    nodes: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def _grouped_names(nodes: list[ast.AST]) -> set[str]:
    """Variables assigned a grouping (`g = df.groupBy("k")`), so `g.count()` is not a DataFrame count."""
    return {target.id for node in nodes if isinstance(node, ast.Assign) and _is_grouping(node.value, set())
            for target in node.targets if isinstance(target, ast.Name)}


def _is_grouping(node: ast.AST, grouped: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in grouped
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and (node.func.attr in GROUPING or _is_grouping(node.func.value, grouped)))


def _finding(node: ast.AST, grouped: set[str], called: set[int]) -> Finding | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _call_finding(node, node.func, grouped)
    if (isinstance(node, ast.Attribute) and node.attr in ANALYZING and isinstance(node.ctx, ast.Load)
            and id(node) not in called):
        return Finding(node.lineno, f"reads DataFrame.{node.attr}, which analyzes the query",
                       "name the columns you need instead of reading them from the DataFrame")
    return None


def _call_finding(call: ast.Call, func: ast.Attribute, grouped: set[str]) -> Finding | None:
    name, on_grouping = func.attr, _is_grouping(func.value, grouped)
    if name in NUMERIC_AGGREGATIONS and on_grouping and not call.args and not call.keywords:
        return Finding(call.lineno, f"calls GroupedData.{name}() without columns, which needs the schema",
                       f"name the columns: .{name}(\"amount\", ...) or .agg(F.{name}(\"amount\"))")
    if name in ANALYZING_CALLS:
        return Finding(call.lineno, f"calls DataFrame.{name}(), which analyzes the query",
                       "remove it from the transformation (debug with --runner spark)")
    if name in RUNNING and not on_grouping and not _looks_like_other_api(name, call):
        return Finding(call.lineno, f"calls DataFrame.{name}(), which runs a query",
                       "leave counts and checks to `expectations`; build the DataFrame without running it")
    return None


def _looks_like_other_api(name: str, call: ast.Call) -> bool:
    """`s.count("x")` (str, list) and `F.first(col)` take arguments a DataFrame method of that name does not."""
    if name in ("count", "collect", "toPandas", "toArrow", "first", "isEmpty", "cache", "toLocalIterator"):
        return bool(call.args or call.keywords) or _is_module_function(call)
    return _is_module_function(call)


def _is_module_function(call: ast.Call) -> bool:
    """`F.first(...)`, `functions.count(...)`: a call on a plain lower-case or `F`-like module name."""
    target = call.func.value if isinstance(call.func, ast.Attribute) else None
    return isinstance(target, ast.Name) and target.id in ("F", "f", "functions", "sf", "fn", "psf")
