"""A first local run on a machine that cannot fetch Delta's jars and has none cached: exit 3 with one
clear message saying how to get them, never a silent fallback to parquet, and stdout stays JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_project

# A Maven "mirror" nobody listens on, and an empty Ivy cache: what an offline machine has.
UNREACHABLE_MIRROR = """<ivysettings>
  <settings defaultResolver="mirror"/>
  <caches defaultCacheDir="{cache}"/>
  <resolvers><ibiblio name="mirror" m2compatible="true" root="http://127.0.0.1:9/maven2/"/></resolvers>
</ivysettings>
"""


def test_without_network_or_cached_jars_the_run_exits_3_saying_how_to_get_them(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, "pipeline: {schema: offline, transformations: ./transformations}\n"
                         "tables:\n  - {name: one, layer: bronze}\n",
                         {"bronze/one.py": "def one(spark):\n    return spark.range(3)\n"})
    home = tmp_path / "home"  # no ~/.cache/ldp_engine jar list, no ~/.ivy2.5.2 (Java reads user.home)
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(UNREACHABLE_MIRROR.format(cache=tmp_path / "ivy-cache"))
    env = {**os.environ, "HOME": str(home), "JAVA_TOOL_OPTIONS": f"-Duser.home={home}",
           "LDP_IVY_SETTINGS": str(settings), "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run([str(Path(sys.executable).with_name("ldp_engine")), "--format", "json"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)

    assert proc.returncode == 3, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # Ivy's `:: loading settings ::` line went to stderr, not here
    [error] = summary["errors"]
    assert summary["status"] == "error" and error.startswith("local Spark could not start")
    assert "io.delta:delta-spark" in error and "Maven Central" in error and "LDP_IVY_SETTINGS" in error
    assert "unresolved dependency" in proc.stderr  # Ivy's own report, which the message points to
    assert "Traceback" not in proc.stderr
    assert not list((root / ".ldp").glob("warehouse/**/*.parquet"))  # nothing written in another format
