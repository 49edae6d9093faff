"""A real PostgreSQL for the Lakebase tests: one embedded server (unix socket only) per session."""
from __future__ import annotations

import pytest

from pipelines.core.lakebase import LakebaseSettings
from pipelines.lakebase.connection import Lakebase
from tests.conftest import server_folder


@pytest.fixture(scope="session")
def lakebase():
    with server_folder("ldp_lakebase_pg_") as folder, Lakebase(LakebaseSettings(), folder) as server:
        server.describe()  # starts it
        yield server


def rows(lakebase: Lakebase, query: str) -> list[tuple]:
    with lakebase.connect() as conn:
        return conn.execute(query).fetchall()
