"""pytest plugin (auto-registered by the wheel): a session-scoped local SparkSession fixture.

Use it to unit-test transformation functions with chispa:

    def test_customers_silver(spark):
        df = spark.createDataFrame([...])
        assert_df_equality(customers_silver(df), expected)

The session runs `local[2]`, binds to 127.0.0.1, uses UTC, and keeps its catalog in a temporary
folder, so tests never touch the project's `.ldp/` state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from pipelines.catalog.session import local_session

    session = local_session(tmp_path_factory.mktemp("ldp_spark"), app_name="pytest", master="local[2]")
    yield session
    session.stop()
