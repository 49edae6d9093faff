"""A real PostgreSQL for the Lakebase tests: one embedded server (unix socket only) per session."""
from __future__ import annotations

import pytest

from pipelines.core.lakebase import LakebaseSettings
from pipelines.lakebase.connection import Lakebase


@pytest.fixture(scope="session")
def lakebase(tmp_path_factory):
    with Lakebase(LakebaseSettings(), tmp_path_factory.mktemp("pg")) as server:
        server.describe()  # starts it
        yield server


def rows(lakebase: Lakebase, query: str) -> list[tuple]:
    with lakebase.connect() as conn:
        return conn.execute(query).fetchall()
