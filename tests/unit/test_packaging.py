"""The wheel ships the example config, its data and checks, and both entry points."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_default_config_and_entry_points(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("databricks_etl_framework-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"pipelines/_bundled/config.yml", "pipelines/_bundled/expectations/orders_silver.yml",
            "pipelines/_bundled/data/landing/orders/orders_2026-11-01.json",
            "pipelines/transformations/silver/orders_silver.py", "pipelines/catalog/log4j2.properties",
            "pipelines/ldp_pipeline.py", "pipelines/engine/sdp_driver.py", "pipelines/ldp/registrar.py"} <= names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "ldp_engine = pipelines.ldp_engine:main" in entry_points
    assert "ldp_spark = pipelines.testing.plugin" in entry_points
    bundled = zipfile.ZipFile(wheel).read("pipelines/_bundled/config.yml").decode()
    assert bundled == (REPO / "config.yml").read_text()
